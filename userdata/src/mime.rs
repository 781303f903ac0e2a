//! MIME multi-part user data, read and written as Karpenter does with Go's `net/mail` and
//! `mime/multipart`: header keys in canonical form and sorted, a part's body ending before the
//! line break that precedes the next delimiter, and every carriage return dropped from the output.

use crate::Error;

/// Karpenter's boundary.
const BOUNDARY: &str = "//";

/// Header (key, value) pairs: canonical keys, in the order read.
type Headers = Vec<(String, String)>;

/// One part: its headers and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub headers: Headers,
    pub body: String,
}

impl Part {
    pub fn new(content_type: &str, body: impl Into<String>) -> Self {
        Part { headers: vec![("Content-Type".to_owned(), content_type.to_owned())], body: body.into() }
    }

    /// The first `Content-Type` value, as written.
    pub fn content_type(&self) -> &str {
        header(&self.headers, "Content-Type").unwrap_or_default()
    }

    /// The content type without parameters, lower-cased.
    pub fn media_type(&self) -> String {
        media_type(self.content_type())
    }
}

/// Karpenter's test for user data that is already MIME.
pub(crate) fn is_mime(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("MIME-Version:") || t.starts_with("Content-Type:")
}

/// The parts of a multi-part document (Go's `mail.ReadMessage` then `multipart.Reader`).
pub(crate) fn parse(text: &str) -> Result<Vec<Part>, Error> {
    let text = text.replace('\r', "");
    let (headers, body) = read_headers(&text)?;
    let content_type = header(&headers, "Content-Type").unwrap_or_default();
    if !media_type(content_type).starts_with("multipart/") {
        return Err(Error::Mime(format!("content type {content_type:?} is not multipart")));
    }
    let boundary = param(content_type, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Mime("the multipart content type has no boundary".into()))?;
    parse_body(body, &format!("--{boundary}"))
}

/// A document with Karpenter's boundary holding `parts` in order.
pub(crate) fn write(parts: &[Part]) -> String {
    let mut out = format!("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\n\n");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("--");
        out.push_str(BOUNDARY);
        out.push('\n');
        let mut headers: Vec<&(String, String)> = part.headers.iter().collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&part.body);
    }
    out.push_str(&format!("\n--{BOUNDARY}--\n"));
    out.replace('\r', "")
}

fn header<'a>(headers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// A parameter of a content type (`boundary="//"`), unquoted.
fn param(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
                }
                Some(out)
            }
            None => Some(v.to_owned()),
        }
    })
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` -> `Content-Type`; keys holding
/// anything but token characters are left alone.
fn canonical_key(key: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if key.is_empty() || !key.chars().all(token) {
        return key.to_owned();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

/// Header lines up to the first empty line (continuation lines joined), and what follows.
fn read_headers(text: &str) -> Result<(Headers, &str), Error> {
    let mut headers = Headers::new();
    let mut rest = text;
    loop {
        let (line, next) = match rest.split_once('\n') {
            Some((line, next)) => (line, next),
            None if rest.is_empty() => return Ok((headers, rest)),
            None => (rest, ""),
        };
        rest = next;
        if line.is_empty() {
            return Ok((headers, rest));
        }
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().ok_or_else(|| Error::Mime(format!("header continues nothing: {line:?}")))?;
            last.1 = format!("{} {}", last.1, line.trim()).trim().to_owned();
            continue;
        }
        let (key, value) =
            line.split_once(':').ok_or_else(|| Error::Mime(format!("malformed header line {line:?}")))?;
        headers.push((canonical_key(key.trim_end()), value.trim().to_owned()));
    }
}

/// Whether `rest` (just after a `--boundary`) ends a delimiter line: `--` closes the document,
/// otherwise only spaces and tabs may follow before the line break. Returns (closes, line length).
fn delimiter_tail(rest: &str) -> Option<(bool, usize)> {
    if rest.starts_with("--") {
        return Some((true, rest.find('\n').map_or(rest.len(), |i| i + 1)));
    }
    let padding = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let after = &rest[padding..];
    if after.is_empty() {
        Some((false, padding))
    } else if after.starts_with('\n') {
        Some((false, padding + 1))
    } else {
        None
    }
}

fn parse_body(body: &str, dash_boundary: &str) -> Result<Vec<Part>, Error> {
    // The preamble: everything up to the first delimiter line.
    let mut offset = 0;
    let mut start = None;
    for line in body.split_inclusive('\n') {
        if let Some(tail) = line.strip_prefix(dash_boundary)
            && let Some((closes, _)) = delimiter_tail(tail)
        {
            if closes {
                return Ok(Vec::new());
            }
            start = Some(offset + line.len());
            break;
        }
        offset += line.len();
    }
    let mut pos = start.ok_or_else(|| Error::Mime(format!("no {dash_boundary} delimiter")))?;
    let mut parts = Vec::new();
    loop {
        let (headers, content) = read_headers(&body[pos..])?;
        let content_start = body.len() - content.len();
        let (end, closes, next) = find_delimiter(body, content_start, dash_boundary)
            .ok_or_else(|| Error::Mime(format!("a part is not closed by {dash_boundary}")))?;
        parts.push(Part { headers, body: body[content_start..end].to_owned() });
        if closes {
            return Ok(parts);
        }
        pos = next;
    }
}

/// The next delimiter at or after `from`: (end of the part's body, closes the document, start of
/// the next part). The line break before a delimiter belongs to it, except for an empty body.
fn find_delimiter(body: &str, from: usize, dash_boundary: &str) -> Option<(usize, bool, usize)> {
    if let Some(tail) = body[from..].strip_prefix(dash_boundary)
        && let Some((closes, len)) = delimiter_tail(tail)
    {
        return Some((from, closes, from + dash_boundary.len() + len));
    }
    let needle = format!("\n{dash_boundary}");
    let mut search = from;
    while let Some(i) = body[search..].find(&needle) {
        let at = search + i;
        let tail_start = at + needle.len();
        if let Some((closes, len)) = delimiter_tail(&body[tail_start..]) {
            return Some((at, closes, tail_start + len));
        }
        search = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_as_go_does() {
        let doc = "MIME-Version: 1.0\r\ncontent-type: multipart/mixed; boundary=\"BOUND\"\r\n\r\npreamble\r\n--BOUND\r\nContent-Type: text/x-shellscript\r\nx-extra: a\r\n  b\r\n\r\necho one\r\n\r\n--BOUND  \r\nContent-Type: text/plain\r\n\r\n--BOUND--\r\nepilogue";
        let parts = parse(doc).unwrap_or_default();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0].body, "echo one\n");
        assert_eq!(parts[0].headers[1], ("X-Extra".to_owned(), "a b".to_owned()));
        assert_eq!(parts[1].body, "");
        assert_eq!(parts[1].media_type(), "text/plain");
    }

    #[test]
    fn writes_karpenters_layout() {
        let parts = [
            Part::new("text/x-shellscript", "a\n"),
            Part { headers: vec![("B".into(), "2".into()), ("A".into(), "1".into())], body: "b".into() },
        ];
        assert_eq!(
            write(&parts),
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n--//\nContent-Type: text/x-shellscript\n\na\n\n--//\nA: 1\nB: 2\n\nb\n--//--\n"
        );
        let sorted = Part { headers: vec![("A".into(), "1".into()), ("B".into(), "2".into())], body: "b".into() };
        assert_eq!(parse(&write(&parts)), Ok(vec![parts[0].clone(), sorted]));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert!(matches!(parse("MIME-Version: 1.0\nContent-Type: text/plain\n\nx"), Err(Error::Mime(_))));
        assert!(matches!(parse("MIME-Version: 1.0\nContent-Type: multipart/mixed\n\nx"), Err(Error::Mime(_))));
        assert!(matches!(parse("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nunclosed"), Err(Error::Mime(_))));
        assert!(matches!(parse("not a header\n\n"), Err(Error::Mime(_))));
    }
}
