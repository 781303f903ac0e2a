//! TOML written as Karpenter's Bottlerocket writer (`pelletier/go-toml/v2`) writes it: in each
//! table its values first, then its sub-tables as `[a.b]` sections (an empty line before a section
//! that follows values); map keys sorted, struct fields in declaration order; literal `'strings'`
//! unless they hold a quote or control character; keys bare when they can be.

use toml::Value;

/// A table's entries in the order they are written.
pub(crate) type Entries = Vec<(String, Item)>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Value(Value),
    Table(Entries),
    ArrayOfTables(Vec<Entries>),
}

/// A table's entries sorted by key, as go-toml writes a map.
pub(crate) fn sorted(table: &toml::Table) -> Entries {
    let mut entries: Entries = table.iter().map(|(k, v)| (k.clone(), item(v))).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// A value as go-toml classifies it: tables and non-empty arrays of tables are sections.
pub(crate) fn item(v: &Value) -> Item {
    match v {
        Value::Table(t) => Item::Table(sorted(t)),
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_table) => {
            Item::ArrayOfTables(a.iter().filter_map(Value::as_table).map(sorted).collect())
        }
        other => Item::Value(other.clone()),
    }
}

/// The document for a root table.
pub(crate) fn document(root: &Entries) -> String {
    let mut w = Writer { out: String::new(), last_was_header: false, path: Vec::new() };
    w.table(root);
    w.out
}

struct Writer {
    out: String,
    last_was_header: bool,
    path: Vec<String>,
}

impl Writer {
    fn table(&mut self, entries: &Entries) {
        for (key, item) in entries {
            if let Item::Value(v) = item {
                self.out.push_str(&format!("{} = {}\n", key_text(key), value_text(v)));
                self.last_was_header = false;
            }
        }
        for (key, item) in entries {
            self.path.push(key.clone());
            match item {
                Item::Value(_) => {}
                Item::Table(sub) => {
                    self.header(false);
                    self.table(sub);
                }
                Item::ArrayOfTables(list) => {
                    for sub in list {
                        self.header(true);
                        self.table(sub);
                    }
                }
            }
            self.path.pop();
        }
    }

    fn header(&mut self, array: bool) {
        if !self.out.is_empty() && !self.last_was_header {
            self.out.push('\n');
        }
        let name = self.path.iter().map(|k| key_text(k)).collect::<Vec<_>>().join(".");
        let (open, close) = if array { ("[[", "]]") } else { ("[", "]") };
        self.out.push_str(&format!("{open}{name}{close}\n"));
        self.last_was_header = true;
    }
}

fn key_text(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare { key.to_owned() } else { string_text(key) }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => string_text(s),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => float_text(*f),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(value_text).collect::<Vec<_>>().join(", ")),
        Value::Table(t) => {
            let mut pairs: Vec<(&String, &Value)> = t.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{} = {}", key_text(k), value_text(v))).collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Go's shortest decimal form, with `.0` when it has no fraction or exponent.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = f.to_string();
    if s.contains(['.', 'e', 'E']) { s } else { format!("{s}.0") }
}

fn string_text(s: &str) -> String {
    let literal = !s.chars().any(|c| c == '\'' || c == '\u{7f}' || (c as u32) < 0x20);
    if literal {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_like_go_toml() {
        let parsed: Result<toml::Table, _> =
            "top = 1\n[a]\nx = \"it's\"\ny = [1.0, {a = 1}]\n'k.k' = {b = 2, a = 1}\n[a.empty]\n[[a.list]]\nn = 1\n[[a.list]]\nn = 2\n"
                .parse();
        let doc = document(&sorted(&parsed.unwrap_or_default()));
        assert_eq!(
            doc,
            "top = 1\n\n[a]\nx = \"it's\"\ny = [1.0, {a = 1}]\n\n[a.empty]\n[a.'k.k']\na = 1\nb = 2\n\n[[a.list]]\nn = 1\n\n[[a.list]]\nn = 2\n"
        );
    }
}
