//! What a state file keeps of the event bus: the rules (as their JSON patterns), the event log
//! and the next sequence number. The sink and the forwarder are the running process's.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Bus, Rule, RuleConfig};
use crate::bounded_log::BoundedLog;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BusState {
    rules: Vec<RuleConfig>,
    log: VecDeque<String>,
    next_seq: u64,
}

impl Bus {
    pub fn snapshot(&self) -> BusState {
        let rules = self
            .rules
            .iter()
            .map(|r| RuleConfig { name: r.name.clone(), pattern: r.pattern_json.clone(), targets: r.targets.clone() })
            .collect();
        BusState { rules, log: self.log.iter().cloned().collect(), next_seq: self.next_seq }
    }

    pub fn restore(&mut self, s: BusState) -> Result<(), String> {
        self.rules = s.rules.iter().map(Rule::from_config).collect::<Result<Vec<_>, _>>()?;
        // Into this process's budget: a state file from a larger one keeps its newest lines.
        self.log = BoundedLog::with_budget(self.log.budget());
        for line in s.log {
            self.keep_line(line);
        }
        self.next_seq = s.next_seq;
        Ok(())
    }
}
