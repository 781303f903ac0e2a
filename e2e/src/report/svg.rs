//! Small pieces for drawing charts as SVG text: escaping, the time scale shared by every panel of
//! a page, tick choice and the way times, money and counts are written.

/// Escapes text for HTML and SVG, in content and in attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The width of text at `font_px` in the page's sans-serif font, roughly (an average glyph is a
/// little over half the font size); used to keep labels apart.
pub fn text_width(s: &str, font_px: f64) -> f64 {
    s.chars().count() as f64 * font_px * 0.58
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// World time to x: `[0, t_max]` onto `[x0, x1]` pixels. Every panel of a page shares one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeScale {
    pub t_max: f64,
    pub x0: f64,
    pub x1: f64,
    /// Seconds between ticks.
    pub step: f64,
}

/// Tick steps in seconds, from which the one giving at most [`MAX_TICKS`] ticks is taken.
const STEPS: [f64; 18] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0,
    14400.0,
];
const MAX_TICKS: f64 = 12.0;

impl TimeScale {
    /// A scale that shows `[0, end]` (rounded up to a whole tick) between `x0` and `x1`.
    pub fn new(end: f64, x0: f64, x1: f64) -> TimeScale {
        let end = end.max(1.0);
        let step = STEPS.iter().copied().find(|s| end / s <= MAX_TICKS).unwrap_or(end / MAX_TICKS);
        TimeScale { t_max: (end / step).ceil() * step, x0, x1, step }
    }

    pub fn x(&self, t: f64) -> f64 {
        self.x0 + t.clamp(0.0, self.t_max) / self.t_max * (self.x1 - self.x0)
    }

    /// Tick times, 0 and t_max included.
    pub fn ticks(&self) -> Vec<f64> {
        let n = (self.t_max / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step).collect()
    }

    /// A tick's label: seconds below a minute's step, else minutes.
    pub fn tick_label(&self, t: f64) -> String {
        if self.step >= 60.0 { format!("{} min", fmt_num(t / 60.0)) } else { format!("{} s", fmt_num(t)) }
    }
}

/// A number without a needless fraction: `3`, `2.5`.
pub fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 { format!("{:.0}", v.round()) } else { format!("{v:.1}") }
}

/// A duration for people: `42 s`, `3 min 20 s`, `1 h 5 min`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        return format!("{} s", fmt_num((s * 10.0).round() / 10.0));
    }
    let whole = s.round() as u64;
    let (h, m, sec) = (whole / 3600, whole % 3600 / 60, whole % 60);
    match (h, sec) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{m} min {sec} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// Dollars per hour with as many decimals as small prices need.
pub fn fmt_cost(v: f64) -> String {
    if v == 0.0 {
        "$0/h".to_owned()
    } else if v >= 10.0 {
        format!("${v:.2}/h")
    } else {
        format!("${v:.3}/h")
    }
}

/// Up to about `n` round ticks from 0 covering `max`: the step and the top. Counts (`whole`)
/// get whole steps.
pub fn value_ticks(max: f64, n: usize, whole: bool) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let nice: &[f64] = if whole { &[1.0, 2.0, 5.0, 10.0] } else { &[1.0, 2.0, 2.5, 5.0, 10.0] };
    let mut step = nice.iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    if whole {
        step = step.max(1.0).round();
    }
    (step, (max / step).ceil() * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scale_picks_round_ticks_and_maps_linearly() {
        let s = TimeScale::new(250.0, 100.0, 1100.0);
        assert_eq!(s.step, 30.0);
        assert_eq!(s.t_max, 270.0);
        assert_eq!(s.ticks().len(), 10);
        assert_eq!(s.tick_label(90.0), "90 s");
        assert!((s.x(135.0) - 600.0).abs() < 1e-9);
        let long = TimeScale::new(1500.0, 0.0, 1.0);
        assert_eq!((long.step, long.tick_label(600.0)), (180.0, "10 min".to_owned()));
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_duration(42.0), "42 s");
        assert_eq!(fmt_duration(200.0), "3 min 20 s");
        assert_eq!(fmt_duration(3900.0), "1 h 5 min");
        assert_eq!(fmt_cost(0.0961), "$0.096/h");
        assert_eq!(value_ticks(10.0, 4, false), (2.5, 10.0));
        assert_eq!(value_ticks(10.0, 4, true), (5.0, 10.0));
        assert_eq!(value_ticks(3.0, 4, true), (1.0, 3.0));
        assert_eq!(value_ticks(0.0, 4, false), (0.25, 1.0));
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
