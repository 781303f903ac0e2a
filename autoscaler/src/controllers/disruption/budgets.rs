//! Disruption budgets: how many of a NodePool's nodes may be disrupted at once for a reason,
//! including `schedule` + `duration` windows (cron, as Karpenter's budgets take them). Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, Timelike, Utc};
use kube::ResourceExt;

use crate::apis::common::parse_duration;
use crate::apis::nodepool::Budget;
use crate::apis::{NodeClaim, NodePool};

/// Disruption reasons, as budgets name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Empty,
    Drifted,
    Expired,
    Underutilized,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Empty => "Empty",
            Reason::Drifted => "Drifted",
            Reason::Expired => "Expired",
            Reason::Underutilized => "Underutilized",
        }
    }
}

/// Every pool's budgets with its node count and how many of its nodes are being disrupted: what
/// the disruptions allowed at a given time are worked out from.
#[derive(Clone, Debug, Default)]
pub struct Budgets {
    pools: BTreeMap<String, PoolBudgets>,
}

#[derive(Clone, Debug)]
struct PoolBudgets {
    budgets: Vec<Budget>,
    nodes: usize,
    disrupting: usize,
}

impl Budgets {
    /// From the pools and their claims; a claim is disrupting once `leaving` names it or its node
    /// (deleting, or its node tainted: node names are not claim names, and the taint comes first).
    pub fn new(pools: &[Arc<NodePool>], claims: &[Arc<NodeClaim>], leaving: &BTreeSet<String>) -> Budgets {
        let mut out = BTreeMap::new();
        for pool in pools {
            let name = pool.name_any();
            let mine: Vec<_> = claims.iter().filter(|c| c.node_pool() == name).collect();
            let disrupting = mine
                .iter()
                .filter(|c| {
                    leaving.contains(&c.name_any())
                        || c.status.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| leaving.contains(n))
                })
                .count();
            out.insert(name, PoolBudgets { budgets: pool.spec.budgets(), nodes: mine.len(), disrupting });
        }
        Budgets { pools: out }
    }

    /// The disruptions each pool still allows at `now`, by reason.
    pub fn at(&self, now: DateTime<Utc>) -> Allowance {
        let mut left = BTreeMap::new();
        for (name, pool) in &self.pools {
            for reason in [Reason::Empty, Reason::Drifted, Reason::Expired, Reason::Underutilized] {
                let allowed = allowed(&pool.budgets, reason, pool.nodes, now).unwrap_or_else(|e| {
                    tracing::warn!(NodePool = %name, error = %e, "invalid disruption budget; allowing none");
                    0
                });
                left.insert((name.clone(), reason), allowed.saturating_sub(pool.disrupting));
            }
        }
        Allowance { left }
    }
}

/// Per-pool disruptions still allowed, by reason; a decision takes from it as it picks nodes.
#[derive(Clone, Debug)]
pub struct Allowance {
    left: BTreeMap<(String, Reason), usize>,
}

impl Allowance {
    /// Takes one disruption for `pool`; false when none is left.
    pub fn take(&mut self, pool: &str, reason: Reason) -> bool {
        match self.left.get_mut(&(pool.to_owned(), reason)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// The number of nodes a pool may have disrupted at once for `reason`: the minimum over the
/// budgets that apply now (a budget with a schedule applies only inside its window). Percentages
/// round up, as Karpenter's do; no budget applies → unlimited.
pub fn allowed(budgets: &[Budget], reason: Reason, pool_nodes: usize, now: DateTime<Utc>) -> Result<usize, String> {
    let mut least = usize::MAX;
    for b in budgets {
        if let Some(reasons) = &b.reasons
            && !reasons.iter().any(|r| r == reason.as_str())
        {
            continue;
        }
        if !active(b, now)? {
            continue;
        }
        least = least.min(nodes(&b.nodes, pool_nodes)?);
    }
    Ok(least)
}

fn nodes(spec: &str, pool_nodes: usize) -> Result<usize, String> {
    match spec.strip_suffix('%') {
        Some(p) => {
            let pct: usize = p.trim().parse().map_err(|_| format!("budget nodes {spec:?} is not a percentage"))?;
            Ok((pool_nodes * pct).div_ceil(100))
        }
        None => spec.trim().parse().map_err(|_| format!("budget nodes {spec:?} is not a count or percentage")),
    }
}

fn active(b: &Budget, now: DateTime<Utc>) -> Result<bool, String> {
    let Some(schedule) = &b.schedule else { return Ok(true) };
    let duration = b
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| e.to_string())?
        .flatten()
        .ok_or_else(|| "a budget with a schedule needs a duration".to_owned())?;
    let cron = Cron::parse(schedule)?;
    // Open if the schedule fired within the last `duration` (minute resolution).
    let minutes = i64::try_from(duration.as_secs() / 60).unwrap_or(i64::MAX).min(366 * 24 * 60);
    let start = now.with_second(0).unwrap_or(now).with_nanosecond(0).unwrap_or(now);
    for back in 0..minutes.max(1) {
        if cron.matches(start - ChronoDuration::minutes(back)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A five-field cron expression (minute hour day-of-month month day-of-week) with `*`, lists,
/// ranges and steps, or one of the `@hourly`-style macros.
#[derive(Debug, PartialEq)]
pub struct Cron {
    fields: [Vec<u32>; 5],
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "schedule {text:?}: expected 5 cron fields (minute hour day month weekday) or a macro like @daily"
            ));
        }
        let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
        let mut fields: [Vec<u32>; 5] = Default::default();
        for (i, (part, (lo, hi))) in parts.iter().zip(ranges).enumerate() {
            fields[i] = field(part, lo, hi).map_err(|e| format!("schedule {text:?}: {e}"))?;
        }
        Ok(Cron { fields })
    }

    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let values = [t.minute(), t.hour(), t.day(), t.month(), t.weekday().num_days_from_sunday()];
        values.iter().zip(&self.fields).all(|(v, allowed)| allowed.contains(v))
    }
}

fn field(text: &str, lo: u32, hi: u32) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in {item:?}"))?),
            None => (item, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                a.parse().map_err(|_| format!("bad range {range:?}"))?,
                b.parse().map_err(|_| format!("bad range {range:?}"))?,
            )
        } else {
            let v: u32 = range.parse().map_err(|_| format!("bad value {range:?}"))?;
            (v, if step > 1 { hi } else { v })
        };
        // Sunday may be written 7.
        let (a, b) = if hi == 6 { (a.min(7) % 7, if b == 7 { 6 } else { b }) } else { (a, b) };
        if a < lo || b > hi || a > b || step == 0 {
            return Err(format!("{item:?} is outside {lo}-{hi}"));
        }
        out.extend((a..=b).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn budget(nodes: &str, schedule: Option<&str>, duration: Option<&str>, reasons: Option<&[&str]>) -> Budget {
        Budget {
            nodes: nodes.to_owned(),
            schedule: schedule.map(str::to_owned),
            duration: duration.map(str::to_owned),
            reasons: reasons.map(|r| r.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn percentages_round_up_and_the_tightest_budget_wins() {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let b = [budget("10%", None, None, None)];
        assert_eq!(allowed(&b, Reason::Underutilized, 20, now).unwrap(), 2);
        assert_eq!(allowed(&b, Reason::Underutilized, 5, now).unwrap(), 1);
        let b = [budget("10%", None, None, None), budget("1", None, None, None)];
        assert_eq!(allowed(&b, Reason::Empty, 20, now).unwrap(), 1);
        assert_eq!(allowed(&[], Reason::Empty, 20, now).unwrap(), usize::MAX);
    }

    #[test]
    fn reasons_limit_which_budgets_apply() {
        let now = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let b = [budget("0", None, None, Some(&["Drifted"])), budget("5", None, None, None)];
        assert_eq!(allowed(&b, Reason::Drifted, 20, now).unwrap(), 0);
        assert_eq!(allowed(&b, Reason::Underutilized, 20, now).unwrap(), 5);
    }

    #[test]
    fn scheduled_windows_apply_only_while_open() {
        // No disruptions during business hours on weekdays (09:00 for 8h).
        let b = [budget("0", Some("0 9 * * 1-5"), Some("8h"), None), budget("10%", None, None, None)];
        let monday_noon = Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap();
        let monday_night = Utc.with_ymd_and_hms(2026, 1, 5, 22, 0, 0).unwrap();
        let sunday_noon = Utc.with_ymd_and_hms(2026, 1, 4, 12, 0, 0).unwrap();
        assert_eq!(allowed(&b, Reason::Empty, 20, monday_noon).unwrap(), 0);
        assert_eq!(allowed(&b, Reason::Empty, 20, monday_night).unwrap(), 2);
        assert_eq!(allowed(&b, Reason::Empty, 20, sunday_noon).unwrap(), 2);
    }

    #[test]
    fn cron_parses_macros_lists_ranges_steps_and_rejects_nonsense() {
        assert_eq!(Cron::parse("@daily").unwrap(), Cron::parse("0 0 * * *").unwrap());
        let c = Cron::parse("*/15 9-17 * * 1,3,5").unwrap();
        assert!(c.matches(Utc.with_ymd_and_hms(2026, 1, 5, 9, 45, 0).unwrap()));
        assert!(!c.matches(Utc.with_ymd_and_hms(2026, 1, 6, 9, 45, 0).unwrap()));
        assert!(Cron::parse("0 9 * *").is_err());
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("0 0 * * 7").is_ok());
    }
}
