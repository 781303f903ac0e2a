//! A small streaming XML writer for the Query protocols' responses (EC2, IAM, STS, SQS).
//!
//! Response shapes are fixed and deeply nested; writing them with explicit `open`/`close` calls
//! keeps the element names next to the botocore names they must match, and is much faster than
//! going through serde for 10k-instance responses.

use std::fmt::Write as _;

#[derive(Debug, Default)]
pub struct XmlWriter {
    buf: String,
    root: String,
    stack: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document: the XML declaration and `<{root} xmlns="{xmlns}">`.
    pub fn document(root: impl Into<String>, xmlns: &str) -> Self {
        let root = root.into();
        // Presized so a typical page (a DescribeInstances page of ~1,000 items is ~2-4 MiB) does not
        // regrow from 1 KiB through a dozen doublings; `reserve` lets callers that know their
        // item count ask for more up front.
        let mut w = Self { buf: String::with_capacity(64 * 1024), root, stack: Vec::with_capacity(16) };
        w.buf.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        w.buf.push('\n');
        let _ = write!(w.buf, r#"<{} xmlns="{xmlns}">"#, w.root);
        w
    }

    pub fn open(&mut self, name: &'static str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self.stack.push(name);
        self
    }

    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.stack.pop() {
            self.buf.push_str("</");
            self.buf.push_str(name);
            self.buf.push('>');
        }
        self
    }

    /// `<name>escaped text</name>`
    pub fn elem(&mut self, name: &str, text: impl AsRef<str>) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        escape_into(&mut self.buf, text.as_ref());
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    pub fn opt(&mut self, name: &str, text: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }

    pub fn bool(&mut self, name: &str, v: bool) -> &mut Self {
        self.elem(name, if v { "true" } else { "false" })
    }

    pub fn num(&mut self, name: &str, v: impl std::fmt::Display) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        let _ = write!(self.buf, "{v}");
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name><item>a</item><item>b</item></name>`
    pub fn string_set<S: AsRef<str>>(&mut self, name: &'static str, items: impl IntoIterator<Item = S>) -> &mut Self {
        self.open(name);
        for i in items {
            self.elem("item", i);
        }
        self.close()
    }

    /// `<name><item>...</item>...</name>` with a closure writing each item's body.
    pub fn item_set<T>(
        &mut self,
        name: &'static str,
        items: impl IntoIterator<Item = T>,
        mut body: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(name);
        for i in items {
            self.open("item");
            body(self, i);
            self.close();
        }
        self.close()
    }

    /// `<tagSet>` with `<item><key/><value/></item>` entries.
    pub fn tag_set<'a>(
        &mut self,
        name: &'static str,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        self.item_set(name, tags, |w, (k, v)| {
            w.elem("key", k).elem("value", v);
        })
    }

    /// Reserves room for `additional` more bytes, for callers that know roughly how much they will write.
    pub fn reserve(&mut self, additional: usize) -> &mut Self {
        self.buf.reserve(additional);
        self
    }

    /// A piece of a document, with no declaration and no root.
    pub fn fragment() -> Self {
        Self::default()
    }

    /// Closes every open element and the root (if any).
    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        if !self.root.is_empty() {
            let _ = write!(self.buf, "</{}>", self.root);
        }
        self.buf
    }
}

/// An answer in the Query protocol's shape (IAM, STS): the action's result wrapper, when it has
/// one, and the request id in `ResponseMetadata`.
pub fn query_response(action: &str, xmlns: &str, request_id: &str, result: Option<XmlWriter>) -> String {
    let mut w = XmlWriter::document(format!("{action}Response"), xmlns);
    if let Some(r) = result {
        let _ = write!(w.buf, "<{action}Result>{}</{action}Result>", r.finish());
    }
    w.open("ResponseMetadata").elem("RequestId", request_id).close();
    w.finish()
}

/// The Query protocol's error envelope (IAM, STS): `<ErrorResponse><Error><Type/><Code/><Message/>
/// </Error><RequestId/></ErrorResponse>`; `Sender` for 4xx, `Receiver` for 5xx.
pub fn query_error(xmlns: &str, status: u16, code: &str, message: &str, request_id: &str) -> String {
    let mut w = XmlWriter::document("ErrorResponse", xmlns);
    w.open("Error")
        .elem("Type", if status >= 500 { "Receiver" } else { "Sender" })
        .elem("Code", code)
        .elem("Message", message)
        .close();
    w.elem("RequestId", request_id);
    w.finish()
}

/// XML text escaping. Carriage returns too (`&#xD;`): XML parsers turn a raw CR into LF, so a
/// value (or an SQS body, whose MD5 the client checks) would not survive the trip otherwise.
pub fn escape_into(buf: &mut String, s: &str) {
    // Most text (ids, names, times) has nothing to escape: copy it in one go.
    if !s.contains(['&', '<', '>', '"', '\'', '\r']) {
        buf.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => buf.push_str("&amp;"),
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&apos;"),
            '\r' => buf.push_str("&#xD;"),
            c => buf.push(c),
        }
    }
}

pub fn escape(s: &str) -> String {
    let mut b = String::with_capacity(s.len());
    escape_into(&mut b, s);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_sets_and_escapes_text() {
        let mut w = XmlWriter::document("DescribeTagsResponse", "http://ec2.amazonaws.com/doc/2016-11-15/");
        w.elem("requestId", "req-1");
        w.item_set("tagSet", [("a&b", "<v>")], |w, (k, v)| {
            w.elem("key", k).elem("value", v);
        });
        let xml = w.finish();
        assert!(xml.ends_with(
            "<requestId>req-1</requestId><tagSet><item><key>a&amp;b</key><value>&lt;v&gt;</value></item></tagSet></DescribeTagsResponse>"
        ));
        assert!(xml.contains(r#"<DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">"#));
    }
}
