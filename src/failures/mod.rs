//! Failed inputs, as Lambda records them: an asynchronous invocation record (written by
//! Lambda's on-failure destination once it gives up on an event) read into what `scar failures`
//! lists: the function, the input, when, how many attempts, and why, in the supervisor's words.
//!
//! A record's content comes from outside: the event names an object key anyone who may upload
//! chose, and the reason holds a script's stderr. Nothing here trusts it: every text is
//! cut to a length and stripped of control characters before it is shown.

pub mod jobs;
pub mod queue;
pub mod replay;
pub mod store;

use serde::Deserialize;
use serde_json::Value;

pub use scar_contract::records::prefix;

pub use scar_contract::records::MAX_RECORD_BYTES;

/// The longest reason shown.
const MAX_REASON: usize = 300;

/// One failed input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The function.
    pub function: String,
    /// The input, `s3://BUCKET/KEY`, when the event was an S3 one.
    pub input: Option<String>,
    /// When Lambda gave up on it (RFC 3339).
    pub time: String,
    /// Invocations made, the first included.
    pub attempts: u64,
    /// Why Lambda gave up: `RetriesExhausted` or `EventAgeExceeded`.
    pub condition: String,
    /// Why the last attempt failed, in the supervisor's words when it answered.
    pub reason: String,
    /// The request id of the last attempt (its log lines carry it).
    pub request_id: String,
    /// The record, `s3://BUCKET/KEY`.
    pub record: String,
    /// When a `scar retry` took the record up, if one did and has not settled it (it died, or
    /// runs now): RFC 3339.
    pub retrying: Option<String>,
    /// The event as the function got it, to invoke it again.
    #[serde(skip)]
    pub event: Value,
    /// The function's ARN as Lambda recorded it.
    #[serde(skip)]
    pub function_arn: String,
    /// For an input in a dead-letter queue (its `record` is `sqs://QUEUE/MESSAGE-ID`): the
    /// receipt of the receive that listed it, with which `scar retry` moves it back.
    #[serde(skip)]
    pub receipt: Option<String>,
    /// For a Batch job that failed without writing its record (its `record` is where it would
    /// have): the job's id.
    #[serde(skip)]
    pub job: Option<String>,
}

impl Failure {
    /// The record's bucket and key.
    #[must_use]
    pub fn location(&self) -> Option<(&str, &str)> {
        self.record.strip_prefix("s3://")?.split_once('/')
    }

    /// True when `wanted` names this record's input: its key as uploaded (`in/a b.txt`), as
    /// the event encodes it (`in/a+b.txt`), or either as `s3://BUCKET/KEY`.
    #[must_use]
    pub fn is_input(&self, wanted: &str) -> bool {
        let Some((bucket, key)) = event_object(&self.event) else {
            return false;
        };
        let decoded = crate::text::percent_decode(&key.replace('+', " "));
        let (want_bucket, want_key) = match wanted.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((b, k)) => (Some(b), k),
                None => return false,
            },
            None => (None, wanted),
        };
        want_bucket.is_none_or(|b| b == bucket) && (want_key == key || decoded == want_key)
    }
}

/// Lambda's invocation record (the fields scar reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    timestamp: String,
    request_context: RequestContext,
    #[serde(default)]
    request_payload: Value,
    #[serde(default)]
    response_payload: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext {
    request_id: String,
    function_arn: String,
    condition: String,
    approximate_invoke_count: u64,
}

/// Why a record cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{record}: not a Lambda invocation record ({why})")]
pub struct BadRecord {
    /// The record.
    pub record: String,
    /// What is wrong.
    pub why: String,
}

/// Reads the record at `record` (its `s3://` address, for messages).
///
/// # Errors
/// When the bytes are not an invocation record.
pub fn parse(record: &str, bytes: &[u8]) -> Result<Failure, BadRecord> {
    let bad = |why: String| BadRecord {
        record: record.to_owned(),
        why,
    };
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(bad(format!("larger than {MAX_RECORD_BYTES} bytes")));
    }
    let r: Record = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    // `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`
    let function = r
        .request_context
        .function_arn
        .split(':')
        .nth(6)
        .ok_or_else(|| bad("its function ARN names no function".into()))?;
    Ok(Failure {
        function: shown(function, 64),
        input: s3_input(&r.request_payload),
        time: shown(&r.timestamp, 40),
        attempts: r.request_context.approximate_invoke_count,
        condition: shown(&r.request_context.condition, 40),
        reason: reason(&r.response_payload),
        request_id: shown(&r.request_context.request_id, 64),
        record: record.to_owned(),
        retrying: None,
        event: r.request_payload,
        function_arn: r.request_context.function_arn,
        receipt: None,
        job: None,
    })
}

pub use scar_contract::records::{LastAttempt, record, record_key};

/// Where `scar retry` marks a record it has taken up: a small object beside the records,
/// under `scar/retrying/`, named after the record's key.
#[must_use]
pub fn mark_key(record_key: &str) -> String {
    format!("{MARKS}{record_key}")
}

pub use crate::model::failures::MARKS;

/// The bucket and key of an S3 event's first record, as S3 sent them (the key URL-encoded,
/// `+` for a space).
fn event_object(event: &Value) -> Option<(&str, &str)> {
    let s3 = event.get("Records")?.get(0)?.get("s3")?;
    Some((
        s3.get("bucket")?.get("name")?.as_str()?,
        s3.get("object")?.get("key")?.as_str()?,
    ))
}

/// `s3://BUCKET/KEY` of an S3 event's first record, the key shown as S3 sent it.
fn s3_input(event: &Value) -> Option<String> {
    let (bucket, key) = event_object(event)?;
    Some(shown(&format!("s3://{bucket}/{key}"), 1100))
}

/// The supervisor answers a failed invocation with `ScarInvocationFailed` and its report
/// (`the invocation failed: {...}`): the exit status, whether it timed out, the uploads that
/// failed and the stderr tail. Any other answer is shown as Lambda recorded it.
fn reason(response: &Value) -> String {
    let text = |k: &str| response.get(k).and_then(Value::as_str).unwrap_or_default();
    let (kind, message) = (text("errorType"), text("errorMessage"));
    let report = message
        .strip_prefix("the invocation failed: ")
        .and_then(|r| serde_json::from_str::<Value>(r).ok());
    let said = match report.as_ref().and_then(|r| r.get("results")?.as_array()) {
        Some(results) => results
            .iter()
            .filter(|r| r.get("ok").and_then(Value::as_bool) != Some(true))
            .map(input_reason)
            .collect::<Vec<_>>()
            .join("; "),
        None if kind.is_empty() && message.is_empty() => "no answer recorded".to_owned(),
        None => format!("{kind}: {message}"),
    };
    shown(&said, MAX_REASON)
}

/// One failed input of the supervisor's report.
fn input_reason(r: &Value) -> String {
    let mut parts = Vec::new();
    if r.get("timed_out").and_then(Value::as_bool) == Some(true) {
        parts.push("timed out".to_owned());
    } else if let Some(status) = r.get("exit_status").and_then(Value::as_i64) {
        parts.push(format!("exit status {status}"));
    }
    let failed: Vec<&str> = r
        .get("upload_errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !failed.is_empty() {
        parts.push(format!(
            "{} upload(s) failed: {}",
            failed.len(),
            failed.join(", ")
        ));
    }
    if let Some(last) = r
        .get("stderr_tail")
        .and_then(Value::as_array)
        .and_then(|t| t.iter().rev().find_map(Value::as_str))
    {
        parts.push(last.to_owned());
    }
    if parts.is_empty() {
        "failed".to_owned()
    } else {
        parts.join(": ")
    }
}

/// `s` cut to `max` characters, its control characters (an escape sequence in a key or in
/// stderr would move a terminal's cursor) shown as `?`.
fn shown(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// The day (`YYYY/MM/DD`) a record's key names: Lambda writes records under
/// `aws/lambda/async/<function>/YYYY/MM/DD/...`.
#[must_use]
pub fn day_of_key(key: &str, function: &str) -> Option<(u32, u32, u32)> {
    let rest = key.strip_prefix(&prefix(function))?;
    let mut parts = rest.split('/');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(response: Value, key: &str) -> Vec<u8> {
        json!({
            "version": "1.0",
            "timestamp": "2026-12-07T10:00:00.000Z",
            "requestContext": {
                "requestId": "r-1",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:ocr:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"Records": [{"s3": {"bucket": {"name": "scans"}, "object": {"key": key}}}]},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": response
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_supervisors_answer_says_why() {
        let report = json!({"ok": false, "results": [{"input": "/tmp/x", "exit_status": 3, "timed_out": false, "ok": false,
            "uploaded": [], "upload_errors": [], "stderr_tail": ["reading page", "boom: bad scan"]}]});
        let f = parse(
            "s3://b/k",
            &record(
                json!({"errorType": "ScarInvocationFailed", "errorMessage": format!("the invocation failed: {report}")}),
                "pages/p1.tif",
            ),
        )
        .expect("a record");
        assert_eq!(f.function, "ocr");
        assert_eq!(f.input.as_deref(), Some("s3://scans/pages/p1.tif"));
        assert_eq!(f.attempts, 3);
        assert_eq!(f.reason, "exit status 3: boom: bad scan");
        assert_eq!(f.event["Records"][0]["s3"]["bucket"]["name"], "scans");
    }

    #[test]
    fn what_a_record_holds_is_cut_and_cannot_drive_a_terminal() {
        let f = parse(
            "s3://b/k",
            &record(
                json!({"errorType": "Runtime.ExitError", "errorMessage": format!("\u{1b}[2J{}", "x".repeat(500))}),
                "pages/\u{1b}]0;owned\u{7}.tif",
            ),
        )
        .expect("a record");
        assert!(
            !f.reason.contains('\u{1b}') && f.reason.chars().count() <= 301,
            "{}",
            f.reason
        );
        assert!(!f.input.unwrap_or_default().chars().any(char::is_control));
        assert!(parse("s3://b/k", b"{\"not\": \"a record\"}").is_err());
        // A record larger than any Lambda writes is refused before it is parsed.
        let mut huge = record(json!({"errorMessage": "x"}), "k");
        huge.resize(MAX_RECORD_BYTES + 1, b' ');
        assert!(parse("s3://b/k", &huge).is_err_and(|e| e.to_string().contains("larger than")));
    }

    #[test]
    fn a_record_scar_writes_reads_back_as_lambdas_do() {
        let event = json!({"Records": [{"s3": {"bucket": {"name": "scans"}, "object": {"key": "in/a+b%2Bc.txt"}}}]});
        let last = LastAttempt {
            request_id: "r-9".into(),
            response: json!({"errorType": "ScarInvocationFailed", "errorMessage": "the invocation failed: {\"ok\":false,\"results\":[{\"ok\":false,\"exit_status\":4,\"stderr_tail\":[\"no\"]}]}"}),
        };
        let secs = 1_796_647_200; // 2026-12-07T12:40:00Z
        let key = record_key("ocr", secs, "r-9");
        assert_eq!(
            key,
            "aws/lambda/async/ocr/2026/12/07/2026-12-07T12.40.00-r-9"
        );
        assert_eq!(day_of_key(&key, "ocr"), Some((2026, 12, 7)));
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:ocr";
        let f = parse("s3://b/k", &super::record(arn, 3, &event, &last, secs)).expect("a record");
        assert_eq!(
            (
                f.function.as_str(),
                f.attempts,
                f.reason.as_str(),
                f.time.as_str()
            ),
            ("ocr", 3, "exit status 4: no", "2026-12-07T12:40:00.000Z")
        );
        assert_eq!(f.event, event);
        // An input is named as uploaded, as the event encodes it, or with its bucket.
        assert!(f.is_input("in/a b+c.txt") && f.is_input("in/a+b%2Bc.txt"));
        assert!(f.is_input("s3://scans/in/a b+c.txt") && !f.is_input("s3://other/in/a b+c.txt"));
        assert!(!f.is_input("in/a") && !f.is_input("s3://scans"));
    }

    #[test]
    fn a_key_names_its_day() {
        assert_eq!(
            day_of_key(
                "aws/lambda/async/ocr/2026/12/07/2026-12-07T10.00.00-abc",
                "ocr"
            ),
            Some((2026, 12, 7))
        );
        assert_eq!(
            day_of_key("aws/lambda/async/ocr2/2026/12/07/x", "ocr"),
            None
        );
    }
}
