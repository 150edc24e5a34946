//! Queued inputs that failed: the events a queued input's queue moved to its dead-letter
//! queue once they were received `maxReceives` times. Listed by receiving them (each hidden a
//! while, then shown again), retried by moving exactly the chosen ones back to their queue (a
//! redrive), where the function's mapping takes them up as it took the first.

use serde_json::Value;

use super::{Failure, s3_input, shown};
use crate::aws::{AwsCloud, Message};
use crate::cloud::CloudError;
use crate::model::queues::DEAD_LETTER_SUFFIX;

/// What `scar failures` lists as the condition of a dead-lettered input.
pub const CONDITION: &str = "DeadLettered";

/// One queued input's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The function the queue runs.
    pub function: String,
    /// The dead-letter queue's name (the queue's, and `-dlq`).
    pub dead_letter: String,
    /// Receives before an event moves there.
    pub max_receives: u32,
}

/// The failed input a dead-lettered message of `s` stands for.
#[must_use]
pub fn failure(s: &Source, m: &Message) -> Failure {
    let event =
        serde_json::from_str::<Value>(&m.body).unwrap_or_else(|_| Value::String(m.body.clone()));
    let time = crate::lock::rfc3339(m.sent);
    Failure {
        function: s.function.clone(),
        input: s3_input(&event),
        reason: format!(
            "received {} times without success, then moved to the dead-letter queue; the function's logs since {time} say why",
            s.max_receives
        ),
        time,
        attempts: u64::from(s.max_receives),
        condition: CONDITION.to_owned(),
        request_id: String::new(),
        record: format!("sqs://{}/{}", s.dead_letter, shown(&m.id, 100)),
        retrying: None,
        event,
        function_arn: String::new(),
        receipt: Some(m.receipt.clone()),
        job: None,
    }
}

/// The dead-letter queue of `f` (listed from one), and its queue.
fn queues(f: &Failure) -> Option<(&str, &str)> {
    let dlq = f.record.strip_prefix("sqs://")?.split_once('/')?.0;
    Some((dlq, dlq.strip_suffix(DEAD_LETTER_SUFFIX)?))
}

/// Every input in the dead-letter queues of `sources` sent at or after `cutoff` (RFC 3339),
/// each hidden from other receivers for `hide` seconds: give back what is not moved with
/// [`give_back`]. A queue that does not exist (not applied yet) holds none.
///
/// # Errors
/// When SQS fails.
pub async fn list(
    cloud: &AwsCloud,
    sources: &[Source],
    cutoff: Option<&str>,
    hide: i32,
) -> Result<Vec<Failure>, CloudError> {
    let mut out = Vec::new();
    for s in sources {
        let Some(messages) = cloud.receive_all(&s.dead_letter, hide).await? else {
            continue;
        };
        let (keep, late): (Vec<Failure>, Vec<Failure>) = messages
            .iter()
            .map(|m| failure(s, m))
            .partition(|f| cutoff.is_none_or(|c| f.time.as_str() >= c));
        give_back(cloud, &late).await?;
        out.extend(keep);
    }
    Ok(out)
}

/// Makes the dead-lettered inputs among `failures` visible again in their queues.
///
/// # Errors
/// When SQS fails.
pub async fn give_back(cloud: &AwsCloud, failures: &[Failure]) -> Result<(), CloudError> {
    let mut by_queue: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for f in failures {
        if let (Some((dlq, _)), Some(r)) = (queues(f), &f.receipt) {
            by_queue.entry(dlq).or_default().push(r.clone());
        }
    }
    for (dlq, receipts) in by_queue {
        cloud.show_again(dlq, &receipts).await?;
    }
    Ok(())
}

/// Takes a dead-lettered input off its dead-letter queue (a local retry ran it).
///
/// # Errors
/// When `f` is not a dead-lettered input, or SQS fails.
pub async fn remove(cloud: &AwsCloud, f: &Failure) -> Result<(), CloudError> {
    let (Some((dlq, _)), Some(receipt)) = (queues(f), &f.receipt) else {
        return Err(not_dead(f));
    };
    cloud.delete_message(dlq, receipt).await
}

fn not_dead(f: &Failure) -> CloudError {
    CloudError::new(
        crate::cloud::ErrorKind::Invalid,
        "redrive",
        format!("{} is not in a dead-letter queue", f.record),
    )
}

/// Moves a dead-lettered input back to its queue: sent there first, then taken off the
/// dead-letter queue, so a run cut short between the two leaves it in both (run twice), never
/// in neither.
///
/// # Errors
/// When `f` is not a dead-lettered input, or SQS fails.
pub async fn redrive(cloud: &AwsCloud, f: &Failure) -> Result<(), CloudError> {
    let (Some((dlq, queue)), Some(receipt)) = (queues(f), &f.receipt) else {
        return Err(not_dead(f));
    };
    let body = match &f.event {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    cloud.send_message(queue, &body).await?;
    cloud.delete_message(dlq, receipt).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_lettered_message_reads_as_its_input() {
        let s = Source {
            function: "ocr".into(),
            dead_letter: "scar-books-ocr-1a2b3c4d-dlq".into(),
            max_receives: 3,
        };
        let body = serde_json::json!({"Records": [{"s3": {"bucket": {"name": "scans"},
            "object": {"key": "pages/a+b.tif"}}}]});
        let m = Message {
            id: "m-1".into(),
            receipt: "r-1".into(),
            body: body.to_string(),
            sent: 1_700_000_000,
            receives: 4,
        };
        let f = failure(&s, &m);
        assert_eq!(f.input.as_deref(), Some("s3://scans/pages/a+b.tif"));
        assert!(f.is_input("pages/a b.tif"));
        assert_eq!((f.attempts, f.condition.as_str()), (3, CONDITION));
        assert_eq!(f.time, "2023-11-14T22:13:20Z");
        assert_eq!(
            queues(&f),
            Some(("scar-books-ocr-1a2b3c4d-dlq", "scar-books-ocr-1a2b3c4d"))
        );
        // A body that is not JSON is kept as it came, to be sent back as it came.
        let odd = failure(
            &s,
            &Message {
                body: "not json".into(),
                ..m
            },
        );
        assert_eq!(odd.event, Value::String("not json".into()));
        assert_eq!(odd.input, None);
    }
}
