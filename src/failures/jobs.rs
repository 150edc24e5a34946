//! Batch jobs that failed without a record: a job whose every attempt ended before its
//! supervisor could write one (the host went away each time, the image could not be pulled, the
//! job could not start). Batch keeps them in its list of FAILED jobs: each carries, in its
//! environment, the event it was submitted with and the key its record would have had, so it
//! is listed as that record would be, and retried as one. Settling it leaves a marker under
//! `scar/settled/` beside the records, since Batch's list still holds the job.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Failure, mark_key, s3_input, shown};
use crate::aws::{AwsCloud, FailedJob, found};
use crate::cloud::CloudError;
use scar_contract::env;

/// What `scar failures` lists as the condition of such a job.
pub const CONDITION: &str = "BatchJobFailed";

/// Where a settled job's marker is: then its record's key.
pub use crate::model::failures::SETTLED_JOBS as SETTLED;

/// The job queue of a function that delegates to Batch, and where its records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The function.
    pub function: String,
    /// Its job queue.
    pub job_queue: String,
    /// The bucket its records go to.
    pub bucket: String,
}

/// The failed input job `j` of `s` stands for, when it is one scar submitted (it names its
/// record's key). Whoever may submit to the queue chooses the environment: a key outside the
/// function's own records, or one that would not be shown as it is, is none of scar's (a
/// retry deletes the key it settles).
#[must_use]
pub fn failure(s: &Source, j: &FailedJob) -> Option<Failure> {
    let key = j
        .environment
        .get(env::FAILURE_RECORD)
        .filter(|k| k.starts_with(&super::prefix(&s.function)) && shown(k, 1024) == **k)?;
    let event = j
        .environment
        .get(env::EVENT)
        .and_then(|e| serde_json::from_str::<Value>(e).ok())
        .unwrap_or(Value::Null);
    Some(Failure {
        function: s.function.clone(),
        input: s3_input(&event),
        time: crate::lock::rfc3339(j.stopped),
        attempts: j.attempts,
        condition: CONDITION.to_owned(),
        reason: shown(
            &format!("the job ended without its supervisor: {}", j.reason),
            300,
        ),
        request_id: shown(&j.id, 64),
        record: format!("s3://{}/{key}", s.bucket),
        retrying: None,
        event,
        function_arn: j
            .environment
            .get(env::FUNCTION_ARN)
            .cloned()
            .unwrap_or_default(),
        receipt: None,
        job: Some(j.id.clone()),
    })
}

/// The failed jobs of `sources` that stopped at or after `cutoff` (RFC 3339) and have no
/// record among `recorded` (`s3://` addresses; their supervisor wrote one, listed there) and
/// no settled marker.
///
/// # Errors
/// When Batch or S3 fails.
pub async fn list(
    cloud: &AwsCloud,
    sources: &[Source],
    cutoff: Option<&str>,
    recorded: &BTreeSet<String>,
) -> Result<Vec<Failure>, CloudError> {
    let mut out = Vec::new();
    for s in sources {
        for j in cloud.failed_jobs(&s.job_queue).await? {
            let Some(mut f) = failure(s, &j) else {
                continue;
            };
            if recorded.contains(&f.record) || cutoff.is_some_and(|c| f.time.as_str() < c) {
                continue;
            }
            let Some((bucket, key)) = f.location() else {
                continue;
            };
            let (bucket, key) = (bucket.to_owned(), key.to_owned());
            let settled = format!("{SETTLED}{key}");
            if found(cloud.read_object(&bucket, &settled, 4096).await)?.is_some() {
                continue;
            }
            // A retry under way: since when its mark says.
            let mark = mark_key(&key);
            f.retrying = found(cloud.read_object(&bucket, &mark, 4096).await)?.map(|bytes| {
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("since")?.as_str().map(str::to_owned))
                    .unwrap_or_default()
            });
            out.push(f);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(env: &[(&str, &str)]) -> FailedJob {
        FailedJob {
            id: "job-1".into(),
            stopped: 1_700_000_000,
            attempts: 3,
            reason: "Host EC2 (instance i-1) terminated.".into(),
            environment: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_job_scar_submitted_reads_as_the_record_it_would_have_written() {
        let s = Source {
            function: "split".into(),
            job_queue: "scar-wf-split".into(),
            bucket: "scar-wf-failures-1a2b3c4d".into(),
        };
        let event =
            r#"{"Records":[{"s3":{"bucket":{"name":"media"},"object":{"key":"v/a.mp4"}}}]}"#;
        let f = failure(
            &s,
            &job(&[
                (env::EVENT, event),
                (env::FAILURE_RECORD, "aws/lambda/async/split/2023/11/14/x"),
                (
                    env::FUNCTION_ARN,
                    "arn:aws:lambda:us-east-1:1:function:split",
                ),
            ]),
        )
        .expect("one of scar's");
        assert_eq!(f.input.as_deref(), Some("s3://media/v/a.mp4"));
        assert_eq!(
            f.record,
            "s3://scar-wf-failures-1a2b3c4d/aws/lambda/async/split/2023/11/14/x"
        );
        assert_eq!((f.attempts, f.condition.as_str()), (3, CONDITION));
        assert!(f.reason.contains("Host EC2"), "{}", f.reason);
        assert_eq!(f.job.as_deref(), Some("job-1"));
        // A job someone else submitted to the queue names no record: not scar's to list.
        assert!(failure(&s, &job(&[(env::EVENT, event)])).is_none());
        // Nor one naming another function's record, a key outside the records, or one with a
        // control character: settling it would delete that key.
        for key in [
            "aws/lambda/async/other/2023/11/14/x",
            "locks/wf.json",
            "aws/lambda/async/split/../../locks/wf.json\u{0}",
            "aws/lambda/async/split/2023/11/14/x\ny",
        ] {
            let j = job(&[(env::EVENT, event), (env::FAILURE_RECORD, key)]);
            assert!(failure(&s, &j).is_none(), "{key:?}");
        }
    }
}
