//! The stack lock in S3: `s3://<lock bucket>/locks/<stack>.json`, taken with a conditional
//! put, renewed by a heartbeat, taken over only once expired (conditional on the expired
//! record's ETag), and released with a conditional delete.
//!
//! The lock bucket is `scar-locks-<account>-<region>` (or `SCAR_LOCK_BUCKET`), created on first
//! use and tagged `scar:managed-by=scar`; no stack owns it and scar never deletes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;

use super::AwsCloud;
use crate::cloud::{CloudError, ErrorKind};
use crate::lock::{LockRecord, now};

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Someone holds it and the lease is live.
    Held(LockRecord),
    /// AWS failed.
    Cloud(CloudError),
}

impl From<CloudError> for LockError {
    fn from(e: CloudError) -> Self {
        LockError::Cloud(e)
    }
}

/// A held lock. Call [`HeldLock::release`] when done; a lock never released runs out with its
/// lease.
#[derive(Debug)]
pub struct HeldLock {
    /// The record written.
    pub record: LockRecord,
    bucket: String,
    key: String,
    etag: Arc<tokio::sync::Mutex<String>>,
    /// Set when a renewal found the lock taken by someone else: stop writing.
    pub lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

fn key_of(stack: &str) -> String {
    format!("locks/{stack}.json")
}

impl AwsCloud {
    /// The bucket locks live in.
    ///
    /// # Errors
    /// When the account cannot be read.
    pub async fn lock_bucket(&self) -> Result<String, CloudError> {
        if let Ok(b) = std::env::var("SCAR_LOCK_BUCKET")
            && !b.is_empty()
        {
            return Ok(b);
        }
        Ok(format!(
            "scar-locks-{}-{}",
            self.account_id().await?,
            self.region
        ))
    }

    async fn ensure_lock_bucket(&self, bucket: &str) -> Result<(), CloudError> {
        // The bucket must be the account's own: a bucket of the same name in another
        // account (its name chosen first by someone else) is refused, never written to.
        let owner = self.account_id().await?;
        let head = self
            .call(bucket, "s3:HeadBucket", || {
                self.s3
                    .head_bucket()
                    .bucket(bucket)
                    .expected_bucket_owner(&owner)
                    .send()
            })
            .await;
        match head {
            Ok(_) => return Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let tags = [(crate::model::tags::MANAGED_BY.to_owned(), "scar".to_owned())].into();
        let region = self.region.clone();
        // A bucket another writer made a moment ago is used as it is.
        self.create_bucket(bucket, &region, &tags).await?;
        tracing::info!(bucket, "the lock bucket is ready");
        Ok(())
    }

    /// The current lock record of `stack` and its ETag, if any.
    ///
    /// # Errors
    /// When S3 fails, or the object is not a lock record.
    pub async fn read_lock(&self, stack: &str) -> Result<Option<(LockRecord, String)>, CloudError> {
        let bucket = self.lock_bucket().await?;
        self.read_lock_in(&bucket, &key_of(stack)).await
    }

    async fn read_lock_in(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(LockRecord, String)>, CloudError> {
        let owner = self.account_id().await?;
        let got = self
            .call(key, "s3:GetObject", || {
                self.s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .expected_bucket_owner(&owner)
                    .send()
            })
            .await;
        let out = match got {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| CloudError::new(ErrorKind::Transient, "s3:GetObject", e.to_string()))?
            .into_bytes();
        let record: LockRecord = serde_json::from_slice(&bytes).map_err(|e| {
            CloudError::new(
                ErrorKind::Invalid,
                "lock",
                format!("s3://{bucket}/{key} is not a scar lock record: {e}"),
            )
        })?;
        Ok(Some((record, etag)))
    }

    /// Writes `record`, on condition: `None` only if no object exists, `Some(etag)` only if the
    /// object still has that ETag. Returns the new ETag, or `None` when the condition failed.
    async fn put_lock(
        &self,
        bucket: &str,
        key: &str,
        record: &LockRecord,
        if_match: Option<&str>,
    ) -> Result<Option<String>, CloudError> {
        let owner = self.account_id().await?;
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| CloudError::new(ErrorKind::Invalid, "lock", e.to_string()))?;
        let put = self
            .call(key, "s3:PutObject", || {
                let req = self
                    .s3
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .expected_bucket_owner(&owner)
                    .content_type("application/json")
                    .body(ByteStream::from(body.clone()));
                match if_match {
                    Some(etag) => req.if_match(etag),
                    None => req.if_none_match("*"),
                }
                .send()
            })
            .await;
        match put {
            Ok(o) => Ok(Some(o.e_tag().unwrap_or_default().to_owned())),
            Err(e) if matches!(e.kind, ErrorKind::Precondition | ErrorKind::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes the lock of `stack` for `operation`, with a lease renewed in the background.
    ///
    /// # Errors
    /// [`LockError::Held`] when a live lease holds it; [`LockError::Cloud`] when S3 fails.
    pub async fn lock(
        self: &Arc<Self>,
        stack: &str,
        operation: &str,
        lease: Duration,
    ) -> Result<HeldLock, LockError> {
        let bucket = self.lock_bucket().await?;
        self.ensure_lock_bucket(&bucket).await?;
        let key = key_of(stack);
        let mut record = LockRecord::new(stack, operation, lease, now());
        for _ in 0..5 {
            if let Some(etag) = self.put_lock(&bucket, &key, &record, None).await? {
                return Ok(self.hold(bucket, key, record, etag, lease));
            }
            let Some((current, etag)) = self.read_lock_in(&bucket, &key).await? else {
                continue; // released in between: try again
            };
            if !current.expired(now()) {
                return Err(LockError::Held(current));
            }
            record.started = now();
            record.expires = record.started + lease.as_secs();
            if let Some(new) = self.put_lock(&bucket, &key, &record, Some(&etag)).await? {
                tracing::warn!(
                    stack,
                    holder = current.holder,
                    lock = current.id,
                    "took over a lock whose lease ran out at {}",
                    crate::lock::rfc3339(current.expires)
                );
                return Ok(self.hold(bucket, key, record, new, lease));
            }
        }
        match self.read_lock_in(&bucket, &key).await? {
            Some((current, _)) => Err(LockError::Held(current)),
            None => Err(LockError::Cloud(CloudError::new(
                ErrorKind::Conflict,
                "lock",
                "the lock kept changing hands; try again",
            ))),
        }
    }

    fn hold(
        self: &Arc<Self>,
        bucket: String,
        key: String,
        record: LockRecord,
        etag: String,
        lease: Duration,
    ) -> HeldLock {
        let etag = Arc::new(tokio::sync::Mutex::new(etag));
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let cloud = Arc::clone(self);
            let (bucket, key, etag, lost) =
                (bucket.clone(), key.clone(), etag.clone(), lost.clone());
            let mut record = record.clone();
            tokio::spawn(async move {
                let every = (lease / 3).max(Duration::from_millis(200));
                loop {
                    tokio::time::sleep(every).await;
                    record.expires = now() + lease.as_secs();
                    let mut current = etag.lock().await;
                    match cloud.put_lock(&bucket, &key, &record, Some(&current)).await {
                        Ok(Some(new)) => *current = new,
                        Ok(None) => {
                            tracing::error!(
                                stack = record.stack,
                                "the lock was broken or taken over by someone else: no new step starts"
                            );
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "renewing the lock failed; retrying"),
                    }
                }
            })
        };
        HeldLock {
            record,
            bucket,
            key,
            etag,
            lost,
            heartbeat,
        }
    }

    /// Releases a held lock (only if it is still this one).
    pub async fn release(&self, held: HeldLock) {
        held.heartbeat.abort();
        let etag = held.etag.lock().await.clone();
        let owner = self.account_id().await.ok();
        let r = self
            .call(&held.key, "s3:DeleteObject", || {
                self.s3
                    .delete_object()
                    .bucket(&held.bucket)
                    .key(&held.key)
                    .set_expected_bucket_owner(owner.clone())
                    .if_match(&etag)
                    .send()
            })
            .await;
        match r {
            Ok(_) => tracing::debug!(lock = held.record.id, "released the lock"),
            Err(e) => {
                tracing::warn!(error = %e, "the lock was not released; its lease runs out by itself")
            }
        }
    }

    /// Breaks the lock of `stack` if its id is `id`.
    ///
    /// # Errors
    /// When no lock is held, the id does not match, or S3 fails.
    pub async fn unlock(&self, stack: &str, id: &str) -> Result<LockRecord, CloudError> {
        let owner = self.account_id().await?;
        let bucket = self.lock_bucket().await?;
        let key = key_of(stack);
        let Some((record, etag)) = self.read_lock_in(&bucket, &key).await? else {
            return Err(CloudError::new(
                ErrorKind::NotFound,
                "scar unlock",
                format!("stack `{stack}` is not locked"),
            ));
        };
        if record.id != id {
            return Err(CloudError::new(
                ErrorKind::Invalid,
                "scar unlock",
                format!(
                    "stack `{stack}` is locked by {} with lock id {}, not {id}; nothing was changed",
                    record.holder, record.id
                ),
            ));
        }
        self.call(&key, "s3:DeleteObject", || {
            self.s3
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .expected_bucket_owner(&owner)
                .if_match(&etag)
                .send()
        })
        .await?;
        Ok(record)
    }
}
