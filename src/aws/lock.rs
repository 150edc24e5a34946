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
use crate::lock::{LockRecord, Operation, now};

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

/// Keeps the `Date` of S3's answer: the server's clock, by which lease expiry is judged.
#[derive(Debug, Clone, Default)]
struct ServerClock(Arc<std::sync::Mutex<Option<u64>>>);

impl ServerClock {
    fn now(&self) -> Option<u64> {
        self.0.lock().ok().and_then(|g| *g)
    }
}

impl aws_sdk_s3::config::Intercept for ServerClock {
    fn name(&self) -> &'static str {
        "ServerClock"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let secs = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| {
                aws_sdk_s3::primitives::DateTime::from_str(
                    d,
                    aws_sdk_s3::primitives::DateTimeFormat::HttpDate,
                )
                .ok()
            })
            .and_then(|t| u64::try_from(t.secs()).ok());
        if let Ok(mut g) = self.0.lock() {
            *g = secs;
        }
        Ok(())
    }
}

/// What a renewal found.
enum Renewal {
    /// The lease runs on.
    Renewed,
    /// Someone broke or took the lock.
    Lost,
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

/// How long a bucket's notification lease lasts: longer than one read-merge-write-verify.
pub(super) const BUCKET_LEASE: Duration = Duration::from_secs(30);

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
        Ok(self
            .read_lock_timed(bucket, key)
            .await?
            .map(|(record, etag, _)| (record, etag)))
    }

    /// [`Self::read_lock_in`], with S3's clock: its time now (the answer's `Date`) and when it
    /// last wrote the record (`Last-Modified`), in seconds since the epoch, when both came.
    async fn read_lock_timed(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(LockRecord, String, Option<(u64, u64)>)>, CloudError> {
        let owner = self.account_id().await?;
        let clock = ServerClock::default();
        let got = self
            .call(key, "s3:GetObject", || {
                self.s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .expected_bucket_owner(&owner)
                    .customize()
                    .interceptor(clock.clone())
                    .send()
            })
            .await;
        let out = match got {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let written = out
            .last_modified()
            .and_then(|t| u64::try_from(t.secs()).ok());
        let server = clock.now().zip(written);
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
        Ok(Some((record, etag, server)))
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
        operation: Operation,
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
            let Some((current, etag, server)) = self.read_lock_timed(&bucket, &key).await? else {
                continue; // released in between: try again
            };
            if current.id == record.id {
                // Our own put went through and its answer was lost (the retry then found
                // the object): the lock is ours.
                return Ok(self.hold(bucket, key, current, etag, lease));
            }
            if !current.expired_by(now(), server) {
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
            let record = record.clone();
            tokio::spawn(async move {
                // Four renewals per lease: one slow or failed renewal still leaves time for
                // the next before the deadline below.
                let every = (lease / 4).max(Duration::from_millis(200));
                // No new step once the lease may have run out: the last renewal that
                // succeeded, plus the lease, minus a margin for clocks and calls in flight.
                let mut deadline = tokio::time::Instant::now() + lease - lease / 4;
                let stack = record.stack.clone();
                let lose = |why: &str| {
                    if !lost.swap(true, Ordering::SeqCst) {
                        tracing::error!(stack, "{why}: no new step starts");
                    }
                };
                loop {
                    let renew = async {
                        tokio::time::sleep(every).await;
                        let mut next = record.clone();
                        next.expires = now() + lease.as_secs();
                        let mut current = etag.lock().await;
                        let sent = tokio::time::Instant::now();
                        let r = cloud.renew(&bucket, &key, &next, &mut current).await;
                        (r, sent)
                    };
                    tokio::pin!(renew);
                    let outcome = tokio::select! {
                        biased;
                        r = &mut renew => r,
                        () = tokio::time::sleep_until(deadline) => {
                            lose("the lock's lease may have run out (no renewal succeeded in time)");
                            // The renewal in flight still finishes, so the ETag stays right
                            // and the release at the end can delete the record.
                            renew.await
                        }
                    };
                    match outcome {
                        (Ok(Renewal::Renewed), sent) => {
                            deadline = sent + lease - lease / 4;
                        }
                        (Ok(Renewal::Lost), _) => {
                            return lose("the lock was broken or taken over by someone else");
                        }
                        (Err(e), _) => {
                            tracing::warn!(error = %e, "renewing the lock failed; retrying");
                        }
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

    /// One renewal of a held lock. A conditional put that fails (412) may be our own earlier
    /// put whose answer was lost: the record is read again, and when its id is still ours the
    /// lock is held (with the ETag read). A record that is gone (`scar unlock`) or another's
    /// means the lock is lost.
    async fn renew(
        &self,
        bucket: &str,
        key: &str,
        record: &LockRecord,
        etag: &mut String,
    ) -> Result<Renewal, CloudError> {
        match self.put_lock(bucket, key, record, Some(etag)).await {
            Ok(Some(new)) => {
                *etag = new;
                return Ok(Renewal::Renewed);
            }
            Ok(None) => {}
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Renewal::Lost),
            Err(e) => return Err(e),
        }
        match self.read_lock_in(bucket, key).await? {
            Some((current, current_etag)) if current.id == record.id => {
                *etag = current_etag;
                // Ours, with the ETag read: the next put is conditional on it.
                match self.put_lock(bucket, key, record, Some(etag)).await? {
                    Some(new) => {
                        *etag = new;
                        Ok(Renewal::Renewed)
                    }
                    None => Ok(Renewal::Lost),
                }
            }
            _ => Ok(Renewal::Lost),
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

    /// Runs `work` holding the short lease of `bucket`'s notification configuration, which is
    /// one document that every stack with a trigger on the bucket reads, changes and writes
    /// whole: without it, two stacks writing at once lose each other's entries. The lease is
    /// an object beside the stack locks (`bucket-leases/<bucket>.json`), taken the same way;
    /// a writer that finds it held waits (a lease outlives a crashed holder by at most
    /// [`BUCKET_LEASE`]).
    ///
    /// # Errors
    /// When the lease cannot be had within twice its length, or S3 fails.
    pub(super) async fn with_bucket_lease<T, F, Fut>(
        &self,
        bucket: &str,
        work: F,
    ) -> Result<T, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        let lock_bucket = self.lock_bucket().await?;
        self.ensure_lock_bucket(&lock_bucket).await?;
        let key = format!("bucket-leases/{bucket}.json");
        let give_up = tokio::time::Instant::now() + 2 * BUCKET_LEASE;
        let mut wait = Duration::from_millis(50);
        let etag = loop {
            let record = LockRecord::new(bucket, Operation::Notification, BUCKET_LEASE, now());
            if let Some(etag) = self.put_lock(&lock_bucket, &key, &record, None).await? {
                break etag;
            }
            if let Some((current, etag, server)) = self.read_lock_timed(&lock_bucket, &key).await?
                && current.expired_by(now(), server)
                && let Some(new) = self
                    .put_lock(&lock_bucket, &key, &record, Some(&etag))
                    .await?
            {
                break new;
            }
            if tokio::time::Instant::now() >= give_up {
                return Err(CloudError::new(
                    ErrorKind::Conflict,
                    "notification lease",
                    format!(
                        "another writer kept s3://{lock_bucket}/{key} (the lease on bucket {bucket}'s notification configuration); try again"
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        };
        let result = work().await;
        let owner = self.account_id().await.ok();
        let released = self
            .call(&key, "s3:DeleteObject", || {
                self.s3
                    .delete_object()
                    .bucket(&lock_bucket)
                    .key(&key)
                    .set_expected_bucket_owner(owner.clone())
                    .if_match(&etag)
                    .send()
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, bucket, "the notification lease was not released; it runs out by itself");
        }
        result
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
impl crate::reconcile::lock::Locker for Arc<AwsCloud> {
    type Held = HeldLock;

    async fn lock(
        &self,
        stack: &str,
        operation: Operation,
        lease: Duration,
    ) -> Result<HeldLock, crate::reconcile::lock::Taken> {
        use crate::reconcile::lock::Taken;
        match AwsCloud::lock(self, stack, operation, lease).await {
            Ok(h) => {
                tracing::debug!(lock = h.record.id, "lock record written");
                Ok(h)
            }
            Err(LockError::Held(r)) => Err(Taken::Held(r)),
            Err(LockError::Cloud(e)) => Err(Taken::Failed(e)),
        }
    }

    fn lost(held: &HeldLock) -> Arc<AtomicBool> {
        held.lost.clone()
    }

    async fn release(&self, held: HeldLock) {
        AwsCloud::release(self, held).await;
    }
}
