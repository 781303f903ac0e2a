//! YAML scalars styled as Karpenter's NodeConfig writer styles them (`sigs.k8s.io/yaml` over
//! go-yaml v2): plain when that reads back as the same string, double-quoted when it would read
//! as another type (`"true"`, `"1"`, `"1:20"`), single-quoted when plain is not allowed (`'#x'`).
//! Strings with line breaks, which no registration holds, are double-quoted rather than folded.

/// `s` as a YAML scalar in block context.
pub(crate) fn scalar(s: &str) -> String {
    if s.contains('\n') || resolves_to_non_string(s) || is_base60_float(s) {
        return double_quoted(s);
    }
    let analysis = analyze(s);
    if analysis.plain_allowed {
        s.to_owned()
    } else if analysis.single_quoted_allowed {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

/// YAML 1.1 as go-yaml v2 resolves a plain scalar: booleans, nulls, numbers and timestamps.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: [&str; 38] = [
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no", "No", "NO", "false",
        "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf",
        ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "<<",
    ];
    if WORDS.contains(&s) || ["-.Inf", "-.INF"].contains(&s) {
        return true;
    }
    match s.chars().next() {
        Some('.') => s.parse::<f64>().is_ok(),
        Some(c) if c.is_ascii_digit() || c == '+' || c == '-' => {
            let plain = s.replace('_', "");
            is_timestamp(s) || is_go_int(&plain) || is_yaml_float(&plain)
        }
        _ => false,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint`: a sign, then decimal, `0x`, `0o`, `0b` or
/// a leading-zero octal number.
fn is_go_int(s: &str) -> bool {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return false;
    }
    match u64::from_str_radix(body, radix) {
        Ok(n) => !negative || n <= 1 << 63,
        Err(_) => false,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A date (`2006-1-2`) or date-time, as go-yaml v2 recognizes them: four digits and a dash first.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let date_end = s.find(['T', 't', ' ']).unwrap_or(s.len());
    let fields: Vec<&str> = s[5..date_end].split('-').collect();
    let date_ok =
        fields.len() == 2 && fields.iter().all(|f| (1..=2).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()));
    date_ok && (date_end == s.len() || s[date_end + 1..].contains(':'))
}

/// YAML 1.1 sexagesimal numbers (`190:20:30`), which go-yaml v2 quotes for older parsers.
fn is_base60_float(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first == '+' || first == '-' || first.is_ascii_digit()) || !s.contains(':') {
        return false;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let mut groups = whole.split(':');
    let head = groups.next().unwrap_or_default();
    let head_ok =
        head.starts_with(|c: char| c.is_ascii_digit()) && head.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let rest: Vec<&str> = groups.collect();
    let rest_ok = !rest.is_empty()
        && rest.iter().all(|g| match g.as_bytes() {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        });
    let fraction_ok = fraction.is_none_or(|f| f.bytes().all(|c| c.is_ascii_digit() || c == b'_'));
    head_ok && rest_ok && fraction_ok
}

struct Analysis {
    plain_allowed: bool,
    single_quoted_allowed: bool,
}

/// libyaml's scalar analysis, for block context.
fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    let mut indicators = s.starts_with("---") || s.starts_with("...");
    let mut special = false;
    let blank = |i: usize| chars.get(i).is_none_or(|c| *c == ' ' || *c == '\t');
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_blank = blank(i + 1);
        if i == 0 {
            indicators |= "#,[]{}&*!|>'\"%@`".contains(c) || (matches!(c, '?' | ':' | '-') && followed_by_blank);
        } else {
            indicators |= (c == ':' && followed_by_blank) || (c == '#' && matches!(chars.get(i - 1), Some(' ' | '\t')));
        }
        special |= !printable(c);
    }
    let edge_space = chars.first() == Some(&' ') || chars.last() == Some(&' ');
    Analysis { plain_allowed: !indicators && !special && !edge_space, single_quoted_allowed: !special }
}

fn printable(c: char) -> bool {
    matches!(c as u32, 0x0a | 0x20..=0x7e | 0x85 | 0xa0..=0xd7ff | 0xe000..=0xfffd | 0x10000..=0x10ffff)
        && c != '\u{feff}'
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::scalar;

    #[test]
    fn styles_scalars_as_go_yaml_v2() {
        for (input, styled) in [
            ("NoSchedule", "NoSchedule"),
            ("true", "\"true\""),
            ("1", "\"1\""),
            ("1000", "\"1000\""),
            ("0x1F", "\"0x1F\""),
            ("1.5", "\"1.5\""),
            (".5", "\".5\""),
            ("1e3", "\"1e3\""),
            ("200m", "200m"),
            ("10%", "10%"),
            ("%x", "'%x'"),
            ("2024-01-02", "\"2024-01-02\""),
            ("1:20", "\"1:20\""),
            ("10.96.0.10", "10.96.0.10"),
            ("fd00::a", "fd00::a"),
            ("https://127.0.0.1:6443", "https://127.0.0.1:6443"),
            ("--node-labels=\"a=b\"", "--node-labels=\"a=b\""),
            ("- x", "'- x'"),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            (" lead", "' lead'"),
            ("", "\"\""),
            ("~", "\"~\""),
            ("tab\there", "\"tab\\there\""),
        ] {
            assert_eq!(scalar(input), styled, "{input:?}");
        }
    }
}
