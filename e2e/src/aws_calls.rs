//! fake-ec2's request log as the e2e tests read it: every AWS call a client made and fake-ec2's
//! answer, to check that a client (upstream Karpenter, the project's autoscaler) met no error the
//! scenario did not inject, and to tabulate what it called.
//!
//! fake-ec2 serves it at `GET /_fake/requests` (JSON `{"requests": [AwsCall...]}`, oldest first).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context as _;
use serde::Deserialize;

use crate::env::Env;

/// One AWS request fake-ec2 answered.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct AwsCall {
    /// Order of arrival.
    pub seq: u64,
    /// `ec2`, `sqs`, `ssm`, `pricing`, `eks`, `iam`, `sts`, `fis`.
    pub service: String,
    /// The operation: the Query `Action`, the JSON protocol's `X-Amz-Target` operation or the
    /// REST operation (`DescribeCluster`).
    pub action: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// The AWS error code of an error answer (`DryRunOperation`, `NoSuchEntity`, ...).
    #[serde(default)]
    pub error_code: Option<String>,
    /// The answer came from a fault the scenario injected (fault rule, FIS action, throttling).
    #[serde(default)]
    pub injected: bool,
    /// The client's User-Agent (Karpenter's carries `karpenter.sh-<version>`).
    #[serde(default)]
    pub user_agent: String,
}

/// The log's JSON body.
#[derive(Debug, Deserialize)]
pub struct RequestLog {
    pub requests: Vec<AwsCall>,
    /// How many of the oldest entries fake-ec2's memory budget let go (absent from older servers).
    #[serde(default)]
    pub dropped: u64,
}

/// An error answer a client is expected to meet by the API's design, in order to work.
#[derive(Clone, Copy, Debug)]
pub struct ExpectedError {
    pub action: &'static str,
    pub code: &'static str,
    /// Why a correct client sees it.
    pub why: &'static str,
}

/// Error answers every Karpenter run meets against any correct EC2/IAM.
pub const KARPENTER_EXPECTED_ERRORS: &[ExpectedError] = &[
    ExpectedError { action: "*", code: "DryRunOperation", why: "DryRun=true succeeds with this error" },
    ExpectedError {
        action: "DescribeLaunchTemplates",
        code: "InvalidLaunchTemplateName.NotFoundException",
        why: "Karpenter looks a launch template up before creating it",
    },
    ExpectedError {
        action: "GetInstanceProfile",
        code: "NoSuchEntity",
        why: "Karpenter looks the EC2NodeClass's instance profile up before creating it",
    },
];

impl Env {
    /// fake-ec2's request log: every AWS call made in this environment so far, oldest first.
    pub async fn aws_calls(&self) -> anyhow::Result<Vec<AwsCall>> {
        let body = self.admin_get("requests").await.context(
            "reading fake-ec2's request log: fake-ec2 must serve GET /_fake/requests (see e2e/src/aws_calls.rs)",
        )?;
        let log = serde_json::from_value::<RequestLog>(body).context("fake-ec2's request log")?;
        // A check over "every call" must not pass on a log missing its start.
        anyhow::ensure!(
            log.dropped == 0,
            "fake-ec2's request log dropped its {} oldest entries to stay within its memory budget \
             (crate::chaos::HARNESS_LOG_BUDGET_BYTES); raise it to check every call",
            log.dropped
        );
        Ok(log.requests)
    }
}

impl AwsCall {
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }
}

/// Error answers that were neither injected nor expected by design.
pub fn unexpected_errors<'a>(calls: &'a [AwsCall], expected: &[ExpectedError]) -> Vec<&'a AwsCall> {
    calls
        .iter()
        .filter(|c| c.is_error() && !c.injected)
        .filter(|c| {
            let code = c.error_code.as_deref().unwrap_or_default();
            !expected.iter().any(|e| e.code == code && (e.action == "*" || e.action == c.action))
        })
        .collect()
}

/// A Markdown table: one row per service and action, how often it was called and its answers
/// (`200 ×12, 400 DryRunOperation ×1`), sorted by service and action.
pub fn table(calls: &[AwsCall]) -> String {
    let mut rows: BTreeMap<(&str, &str), BTreeMap<String, u32>> = BTreeMap::new();
    for c in calls {
        let answer = match &c.error_code {
            Some(code) => format!("{} {code}{}", c.status, if c.injected { " (injected)" } else { "" }),
            None => c.status.to_string(),
        };
        *rows.entry((&c.service, &c.action)).or_default().entry(answer).or_default() += 1;
    }
    let mut s = "| service | action | calls | answers |\n|---|---|---:|---|\n".to_owned();
    for ((service, action), answers) in rows {
        let total: u32 = answers.values().sum();
        let answers: Vec<String> = answers.iter().map(|(a, n)| format!("{a} ×{n}")).collect();
        let _ = writeln!(s, "| {service} | {action} | {total} | {} |", answers.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn call(seq: u64, action: &str, status: u16, code: Option<&str>, injected: bool) -> AwsCall {
        AwsCall {
            seq,
            service: "ec2".into(),
            action: action.into(),
            status,
            error_code: code.map(str::to_owned),
            injected,
            user_agent: "karpenter.sh-v1.14.3".into(),
        }
    }

    #[test]
    fn only_errors_neither_injected_nor_expected_are_unexpected() {
        let calls = vec![
            call(1, "DescribeInstanceTypes", 200, None, false),
            call(2, "DescribeInstanceTypes", 412, Some("DryRunOperation"), false),
            call(3, "DescribeLaunchTemplates", 400, Some("InvalidLaunchTemplateName.NotFoundException"), false),
            call(4, "CreateFleet", 503, Some("RequestLimitExceeded"), true),
            call(5, "DescribeSubnets", 400, Some("InvalidAction"), false),
            call(6, "DescribeImages", 400, Some("InvalidLaunchTemplateName.NotFoundException"), false),
        ];
        let bad: Vec<u64> = unexpected_errors(&calls, KARPENTER_EXPECTED_ERRORS).iter().map(|c| c.seq).collect();
        assert_eq!(bad, [5, 6]);
    }

    #[test]
    fn the_table_groups_answers_per_action() {
        let calls = vec![
            call(1, "RunInstances", 412, Some("DryRunOperation"), false),
            call(2, "CreateFleet", 200, None, false),
            call(3, "CreateFleet", 200, None, false),
            call(4, "CreateFleet", 500, Some("InsufficientInstanceCapacity"), true),
        ];
        assert_eq!(
            table(&calls),
            "| service | action | calls | answers |\n|---|---|---:|---|\n\
             | ec2 | CreateFleet | 3 | 200 ×2, 500 InsufficientInstanceCapacity (injected) ×1 |\n\
             | ec2 | RunInstances | 1 | 412 DryRunOperation ×1 |\n"
        );
    }

    #[test]
    fn the_log_parses_with_optional_fields_missing() {
        let log: RequestLog = serde_json::from_str(
            r#"{"requests": [{"seq": 1, "service": "eks", "action": "DescribeCluster", "status": 200}]}"#,
        )
        .unwrap();
        assert_eq!(log.requests[0].error_code, None);
        assert!(!log.requests[0].injected);
    }
}
