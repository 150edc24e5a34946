//! Failure records: Lambda's invocation-record format, which Lambda writes to a function's S3
//! on-failure destination and which scar writes in its place where Lambda does not (a run
//! here, a retry, a Batch job that failed for good), so that `scar failures` reads every one
//! alike. And when Batch runs a failed job again: a job writes its record only when it will
//! not.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where Lambda writes the records of asynchronous invocations in an S3 destination (then
/// `<function>/YYYY/MM/DD/...`).
pub const RECORDS: &str = "aws/lambda/async/";

/// The most of a record scar or its supervisor reads (Lambda's payloads are at most 256 KiB
/// each way).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Where `scar retry` marks a record it is retrying: then the record's key. A sweep leaves
/// a marked record to that retry.
pub const MARKS: &str = "scar/retrying/";

/// The key of a sweep event: `{"scar-sweep": {}}` runs the function's failure records again
/// (the function's configuration names their bucket, [`crate::Config::sweep`]).
pub const SWEEP: &str = "scar-sweep";

/// Where a function's records are.
#[must_use]
pub fn prefix(function: &str) -> String {
    format!("{RECORDS}{function}/")
}

/// Seconds since the epoch as `2026-11-27T14:05:00Z` (UTC; Howard Hinnant's civil calendar).
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The key of a record written at `secs` (since the epoch) for `function`, as Lambda names
/// them: `aws/lambda/async/<function>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<id>`.
#[must_use]
pub fn record_key(function: &str, secs: u64, id: &str) -> String {
    let at = rfc3339(secs);
    let day = at.get(..10).unwrap_or_default().replace('-', "/");
    let stamp = at.trim_end_matches('Z').replace(':', ".");
    format!("{}{day}/{stamp}-{id}", prefix(function))
}

/// What a record says of the invocation that failed last: its request id (a Batch job's id,
/// for a job) and what the function answered (the supervisor's `ScarInvocationFailed`, or an
/// error of the runtime).
#[derive(Debug, Clone)]
pub struct LastAttempt {
    /// The request id.
    pub request_id: String,
    /// The answer, Lambda's `{errorType, errorMessage}`.
    pub response: Value,
}

/// The invocation record of an event given up on after `attempts` invocations, in the format
/// Lambda writes to an S3 destination, for one Lambda did not make. `secs` is when, since the
/// epoch.
#[must_use]
pub fn record(
    function_arn: &str,
    attempts: u32,
    event: &Value,
    last: &LastAttempt,
    secs: u64,
) -> Vec<u8> {
    let at = rfc3339(secs);
    json!({
        "version": "1.0",
        "timestamp": format!("{}.000Z", at.trim_end_matches('Z')),
        "requestContext": {
            "requestId": last.request_id,
            "functionArn": function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": last.response,
    })
    .to_string()
    .into_bytes()
}

/// What a delegating function's Batch jobs do when they fail for good: where their record
/// goes, and the job definition's retry strategy, to tell the last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFailures {
    /// The bucket the records go to.
    pub bucket: String,
    /// The job definition's retry strategy.
    pub retry: JobRetry,
}

/// A job definition's retry strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRetry {
    /// Attempts in all (the retry strategy's `attempts`).
    pub attempts: u32,
    /// Its `evaluateOnExit` rules, in order.
    #[serde(default)]
    pub rules: Vec<ExitRule>,
}

/// One `evaluateOnExit` rule. Each pattern given must match (a pattern may end with `*`, and
/// then matches what starts with the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitRule {
    /// Against the attempt's status reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
    /// Against the container's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    /// Against the container's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_code: Option<String>,
    /// `RETRY` (true) or `EXIT`.
    pub retry: bool,
}

/// The status reason Batch gives an attempt whose container exited by itself (the job
/// command ended), which is how every attempt the supervisor sees ending ends.
pub const CONTAINER_EXITED: &str = "Essential container in task exited";

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(start) => value.starts_with(start),
        None => value == pattern,
    }
}

impl ExitRule {
    /// Whether it matches an attempt that ended with `status_reason`, `reason` and `code`.
    #[must_use]
    pub fn matches(&self, status_reason: &str, reason: &str, code: i32) -> bool {
        let code = code.to_string();
        [
            (&self.on_status_reason, status_reason),
            (&self.on_reason, reason),
            (&self.on_exit_code, code.as_str()),
        ]
        .iter()
        .all(|(p, v)| p.as_deref().is_none_or(|p| glob(p, v)))
    }
}

impl JobRetry {
    /// Whether Batch runs the job again after attempt `attempt` (1 for the first) ended with
    /// the job command's exit status `code`: attempts are left, and the first rule that
    /// matches says `RETRY` (none matching: Batch retries). The container's reason is empty
    /// for a command that exited by itself.
    #[must_use]
    pub fn runs_again(&self, attempt: u32, code: i32) -> bool {
        if attempt >= self.attempts {
            return false;
        }
        self.rules
            .iter()
            .find(|r| r.matches(CONTAINER_EXITED, "", code))
            .is_none_or(|r| r.retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        status: Option<&str>,
        reason: Option<&str>,
        code: Option<&str>,
        retry: bool,
    ) -> ExitRule {
        ExitRule {
            on_status_reason: status.map(str::to_owned),
            on_reason: reason.map(str::to_owned),
            on_exit_code: code.map(str::to_owned),
            retry,
        }
    }

    #[test]
    fn scars_default_strategy_does_not_run_a_failed_script_again() {
        // Retry when the host went away, not when the script failed.
        let default = JobRetry {
            attempts: 3,
            rules: vec![
                rule(Some("Host EC2*"), None, None, true),
                rule(None, Some("AGENT"), None, true),
                rule(None, Some("*"), None, false),
            ],
        };
        assert!(!default.runs_again(1, 1));
        assert!(!default.runs_again(1, 0));
    }

    #[test]
    fn rules_on_exit_codes_and_the_last_attempt() {
        let f = JobRetry {
            attempts: 3,
            rules: vec![
                rule(None, None, Some("7*"), true),
                rule(None, None, Some("*"), false),
            ],
        };
        assert!(f.runs_again(1, 75), "7* matches 75");
        assert!(f.runs_again(2, 7));
        assert!(!f.runs_again(3, 7), "the last attempt");
        assert!(!f.runs_again(1, 1), "EXIT");
        let none = JobRetry {
            rules: Vec::new(),
            ..f
        };
        assert!(none.runs_again(1, 1), "no rule matches: Batch retries");
        assert!(!none.runs_again(3, 1));
    }

    #[test]
    fn keys_are_lambdas() {
        assert_eq!(
            record_key("ocr", 1_765_104_000, "r-9"),
            "aws/lambda/async/ocr/2025/12/07/2025-12-07T10.40.00-r-9"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
