//! ISO 8601 durations as FIS parameters write them (`PT2M`, `PT120S`, `PT1H30M`, `P1D`).

use crate::clock::Millis;

/// Milliseconds in a `PnDTnHnMnS` duration (fractional seconds allowed), or None if malformed.
pub fn parse_duration(s: &str) -> Option<Millis> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total = 0.0;
    let mut any = false;
    let mut units = |part: &str, allowed: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut next = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            // Units must come in order, each at most once.
            let pos = allowed.iter().position(|(u, _)| *u == c)?;
            if pos < next || num.is_empty() {
                return None;
            }
            next = pos + 1;
            let v: f64 = num.parse().ok()?;
            if c != 'S' && num.contains('.') {
                return None;
            }
            total += v * allowed[pos].1;
            num.clear();
            any = true;
        }
        num.is_empty().then_some(())
    };
    units(date, &[('D', 86_400_000.0)])?;
    if let Some(t) = time {
        units(t, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)])?;
    }
    (any && total.is_finite()).then_some(total.round() as Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_fis_takes() {
        assert_eq!(parse_duration("PT2M"), Some(120_000));
        assert_eq!(parse_duration("PT120S"), Some(120_000));
        assert_eq!(parse_duration("PT1H30M"), Some(5_400_000));
        assert_eq!(parse_duration("P1DT1S"), Some(86_401_000));
        assert_eq!(parse_duration("PT0.5S"), Some(500));
        for bad in ["", "P", "PT", "2M", "PT2", "PTM", "PT2M2H", "PT1.5M", "PT2X"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
