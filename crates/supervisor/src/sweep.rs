//! A sweep: the function's schedule invokes it with `{"scar-sweep": {}}`, and it runs its own
//! failure records again (those Lambda wrote for the inputs it gave up on, and those its Batch
//! jobs wrote), oldest first, while time is left: the record of an input that now succeeds is
//! deleted, one that fails again is replaced by a record of this run. A record `scar retry`
//! has marked is left to it. The invocation succeeds whatever the inputs did (the records
//! keep the books), so Lambda does not run the sweep again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Supervisor, SupervisorError, now_secs};
use scar_contract::records::{self, MAX_RECORD_BYTES};

/// How one record went.
enum Swept {
    /// The input succeeded: the record is deleted.
    Succeeded,
    /// It failed again: a new record replaced it.
    FailedAgain(String),
    /// It could not be run, or its record not settled (why): the record stands.
    Left(String),
}

impl Supervisor {
    /// Sweeps the function's failure records (see the module).
    ///
    /// # Errors
    /// When the function is not swept (its configuration names no bucket), or the records
    /// cannot be listed.
    pub(super) async fn sweep(
        &self,
        request_id: &str,
        remaining: Duration,
    ) -> Result<Value, SupervisorError> {
        let started = Instant::now();
        let Some(bucket) = self.config.sweep.clone() else {
            return Err(SupervisorError::Config(
                "a sweep event, but this function's configuration names no failure records to sweep"
                    .into(),
            ));
        };
        let prefix = records::prefix(&self.config.function);
        let keys = self.keys_under(&bucket, &prefix).await?;
        let marked: BTreeSet<String> = self
            .keys_under(&bucket, &format!("{}{prefix}", records::MARKS))
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(records::MARKS).map(str::to_owned))
            .collect();
        let budget = remaining.saturating_sub(Duration::from_secs(u64::from(
            self.config.timeout_threshold,
        )));
        // What one record took at most so far: a record is begun only while that much is left.
        let mut longest = Duration::from_secs(5);
        let (mut succeeded, mut again, mut left, mut skipped) = (0, 0, 0, 0);
        let mut results = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            if marked.contains(key) {
                skipped += 1;
                continue;
            }
            if started.elapsed() + longest > budget {
                left = keys.len() - n;
                break;
            }
            let began = Instant::now();
            let id = format!("{request_id}-{n}");
            let swept = self
                .sweep_one(&bucket, key, &id, budget.saturating_sub(started.elapsed()))
                .await;
            longest = longest.max(began.elapsed());
            let record = format!("s3://{bucket}/{key}");
            results.push(match swept {
                Swept::Succeeded => {
                    succeeded += 1;
                    tracing::info!(record, "swept: the input succeeded, its record deleted");
                    json!({"record": record, "ok": true})
                }
                Swept::FailedAgain(new) => {
                    again += 1;
                    tracing::warn!(record, new, "swept: the input failed again");
                    json!({"record": record, "ok": false, "recorded_again": new})
                }
                Swept::Left(why) => {
                    skipped += 1;
                    tracing::error!(record, "swept: left as it was: {why}");
                    json!({"record": record, "ok": false, "left": why})
                }
            });
        }
        Ok(json!({
            "ok": true,
            "swept": {"bucket": bucket, "succeeded": succeeded, "failed_again": again,
                "skipped": skipped, "left_for_next_time": left},
            "results": results,
        }))
    }

    /// Runs record `key` again and settles it.
    async fn sweep_one(&self, bucket: &str, key: &str, id: &str, remaining: Duration) -> Swept {
        let payload = match self.record_event(bucket, key).await {
            Ok(p) => p,
            Err(e) => return Swept::Left(e),
        };
        let answer = match self.run_again(&payload, id, remaining).await {
            Ok(a) => a,
            Err(e) => return Swept::Left(e.to_string()),
        };
        let delete = || async {
            self.s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
        };
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return match delete().await {
                Ok(()) => Swept::Succeeded,
                Err(e) => Swept::Left(format!("it succeeded, but deleting its record: {e}")),
            };
        }
        let arn = self
            .function_arn
            .get()
            .cloned()
            .unwrap_or_else(|| format!("arn:aws:lambda:::function:{}", self.config.function));
        let last = records::LastAttempt {
            request_id: id.to_owned(),
            response: json!({"errorType": "ScarInvocationFailed",
                "errorMessage": format!("the invocation failed: {answer}")}),
        };
        let new = records::record_key(&self.config.function, now_secs(), id);
        let body = records::record(&arn, 1, &payload, &last, now_secs());
        let put = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(&new)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await;
        if let Err(e) = put {
            return Swept::Left(format!(
                "it failed again, and writing its new record: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
            ));
        }
        match delete().await {
            Ok(()) => Swept::FailedAgain(format!("s3://{bucket}/{new}")),
            Err(e) => Swept::Left(format!("it failed again; deleting the old record: {e}")),
        }
    }

    /// The event record `key` holds (Lambda's `requestPayload`).
    async fn record_event(&self, bucket: &str, key: &str) -> Result<Value, String> {
        let got = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
        if got.content_length().unwrap_or(0) > i64::try_from(MAX_RECORD_BYTES).unwrap_or(i64::MAX) {
            return Err(format!("larger than {MAX_RECORD_BYTES} bytes"));
        }
        let bytes = got
            .body
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .into_bytes();
        let record: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("not a Lambda invocation record: {e}"))?;
        record
            .get("requestPayload")
            .filter(|p| p.is_object())
            .cloned()
            .ok_or_else(|| "not a Lambda invocation record: no requestPayload".to_owned())
    }

    /// Every key under `prefix` in `bucket`, sorted (a record's key names its time).
    async fn keys_under(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, SupervisorError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    SupervisorError::Aws(format!(
                        "listing s3://{bucket}/{prefix}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    ))
                })?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}
