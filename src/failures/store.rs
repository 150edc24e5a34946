//! The stack's failure records in S3: listed (with the marks of retries under way), written
//! for runs Lambda did not make (local runs, `scar retry`), marked while a retry runs them,
//! and settled once it has: the record deleted when the input succeeded or has a newer record.

use serde_json::Value;

use super::{Failure, LastAttempt, MAX_RECORD_BYTES, mark_key, parse, prefix, record, record_key};
use crate::aws::AwsCloud;
use crate::cloud::{CloudError, ErrorKind};

/// Where one function's records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The function.
    pub function: String,
    /// The bucket its on-failure destination writes to.
    pub bucket: String,
}

/// Seconds since the epoch, now.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Every record of `sources` written at or after `cutoff` (RFC 3339), oldest first, each with
/// the mark of a retry under way if it has one. A record that cannot be read or parsed is
/// skipped and said through `warn`.
///
/// # Errors
/// When a listing fails (a bucket that does not exist holds no records).
pub async fn list(
    cloud: &AwsCloud,
    sources: &[Source],
    cutoff: Option<&str>,
    warn: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Failure>, CloudError> {
    let mut found = Vec::new();
    for s in sources {
        let keys = keys_under(cloud, &s.bucket, &prefix(&s.function)).await?;
        let marks: std::collections::BTreeSet<String> =
            keys_under(cloud, &s.bucket, &mark_key(&prefix(&s.function)))
                .await?
                .into_iter()
                .collect();
        for key in keys {
            // The key names the day: older days are not read at all.
            if let (Some(c), Some((y, m, d))) = (cutoff, super::day_of_key(&key, &s.function))
                && *format!("{y:04}-{m:02}-{d:02}") < *c.get(..10).unwrap_or(c)
            {
                continue;
            }
            let at = format!("s3://{}/{key}", s.bucket);
            let bytes = match cloud.read_object(&s.bucket, &key, MAX_RECORD_BYTES).await {
                Ok(b) => b,
                Err(e) => {
                    warn(&format!("{at}: {e}"));
                    continue;
                }
            };
            match parse(&at, &bytes) {
                // Lambda writes a function's records under its own prefix. One that names
                // another function was written by someone else: `scar retry` would invoke
                // that function with whatever event the record holds.
                Ok(f) if f.function != s.function => warn(&format!(
                    "{at}: skipped: it lies under the records of `{}` but names the function `{}`",
                    s.function, f.function
                )),
                Ok(mut f) if cutoff.is_none_or(|c| f.time.get(..19) >= c.get(..19)) => {
                    let mark = mark_key(&key);
                    if marks.contains(&mark) {
                        f.retrying = Some(
                            cloud
                                .read_object(&s.bucket, &mark, 1024)
                                .await
                                .ok()
                                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                                .and_then(|v| v.get("since")?.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                        );
                    }
                    found.push(f);
                }
                Ok(_) => {}
                Err(e) => warn(&e.to_string()),
            }
        }
    }
    found.sort_by(|a, b| (&a.time, &a.function).cmp(&(&b.time, &b.function)));
    Ok(found)
}

/// The keys under `prefix` of `bucket`; none when the bucket does not exist.
async fn keys_under(
    cloud: &AwsCloud,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, CloudError> {
    match cloud.list_keys(bucket, prefix).await {
        Ok(k) => Ok(k.into_iter().map(|(k, _)| k).collect()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Writes the record of `event`, given up on by `function` after `attempts` invocations, to
/// `bucket` where Lambda would; returns its `s3://` address.
///
/// # Errors
/// When S3 refuses.
pub async fn write(
    cloud: &AwsCloud,
    bucket: &str,
    function: &str,
    function_arn: &str,
    attempts: u32,
    event: &Value,
    last: &LastAttempt,
) -> Result<String, CloudError> {
    let secs = now();
    let key = record_key(function, secs, &last.request_id);
    cloud
        .put_json(
            bucket,
            &key,
            record(function_arn, attempts, event, last, secs),
        )
        .await?;
    Ok(format!("s3://{bucket}/{key}"))
}

/// Marks `f` as taken up by a retry now. A dead-lettered input is marked already: the
/// receive that listed it hides it from other retries.
///
/// # Errors
/// When S3 refuses, or the record's address is not one.
pub async fn mark(cloud: &AwsCloud, f: &Failure) -> Result<(), CloudError> {
    if f.receipt.is_some() {
        return Ok(());
    }
    let (bucket, key) = location(f)?;
    let since = crate::lock::rfc3339(now());
    let body = serde_json::json!({"since": since, "request_id": f.request_id});
    cloud
        .put_json(bucket, &mark_key(key), body.to_string().into_bytes())
        .await
}

/// Takes back the mark of a retry that did not run: the record stands as it was.
///
/// # Errors
/// When S3 refuses.
pub async fn unmark(cloud: &AwsCloud, f: &Failure) -> Result<(), CloudError> {
    if f.receipt.is_some() {
        return super::queue::give_back(cloud, std::slice::from_ref(f)).await;
    }
    let (bucket, key) = location(f)?;
    cloud.delete_key(bucket, &mark_key(key)).await
}

/// Settles `f` after its retry ran: the input succeeded, or failed again and has a newer
/// record. The record goes first, then its mark: a run stopped between the two leaves a
/// mark without a record, which nothing lists. A dead-lettered input is taken off its
/// dead-letter queue.
///
/// # Errors
/// When S3 or SQS refuses.
pub async fn settle(cloud: &AwsCloud, f: &Failure) -> Result<(), CloudError> {
    if f.receipt.is_some() {
        return super::queue::remove(cloud, f).await;
    }
    let (bucket, key) = location(f)?;
    if let Some(job) = &f.job {
        // Batch still lists the job: a marker says it is settled.
        let body = serde_json::json!({"job": job, "settled": crate::lock::rfc3339(now())});
        cloud
            .put_json(
                bucket,
                &format!("{}{key}", super::jobs::SETTLED),
                body.to_string().into_bytes(),
            )
            .await?;
    }
    cloud.delete_key(bucket, key).await?;
    cloud.delete_key(bucket, &mark_key(key)).await
}

fn location(f: &Failure) -> Result<(&str, &str), CloudError> {
    f.location().ok_or_else(|| {
        CloudError::new(
            ErrorKind::Invalid,
            "s3:PutObject",
            format!("{} is not an s3:// address", f.record),
        )
    })
}
