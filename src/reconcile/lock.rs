//! One writer per stack: the lock port, and running a body holding the lock (waiting for it up
//! to a limit, saying whom it waits for; saying who holds it when giving up).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::Ui;
use crate::cloud::CloudError;
use crate::lock::{LockRecord, Operation};

/// Something that holds a stack's lock (the AWS adapter's lock in S3, or a fake in tests).
pub trait Locker: Sync {
    /// A lock held, until released.
    type Held: Send;

    /// Takes `stack`'s lock for `operation`, with a lease of `lease`.
    fn lock(
        &self,
        stack: &str,
        operation: Operation,
        lease: Duration,
    ) -> impl Future<Output = Result<Self::Held, Taken>> + Send;

    /// The flag a lock's holder sets when it finds the lock lost (broken, taken over, the
    /// lease run out): no new step may start.
    fn lost(held: &Self::Held) -> Arc<AtomicBool>;

    /// Releases the lock.
    fn release(&self, held: Self::Held) -> impl Future<Output = ()> + Send;
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum Taken {
    /// Someone holds it and the lease is live.
    Held(LockRecord),
    /// The lock could not be read or written.
    Failed(CloudError),
}

/// Why a body did not run (reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLocked {
    /// Someone else holds the lock.
    Held,
    /// The lock could not be taken.
    Failed,
}

/// How often a waiting run tries the lock again.
const RETRY: Duration = Duration::from_secs(2);

/// Runs `body` holding `stack`'s lock for `operation`; `body` gets the flag a lost lease sets
/// (start no new step). When someone else holds the lock: waits up to `wait` for it (saying
/// whom it waits for), then says who, what, since when and how to break it (`dir` names the
/// stack in that message), and runs nothing.
///
/// # Errors
/// [`NotLocked`], reported through `ui`.
#[expect(
    clippy::too_many_arguments,
    reason = "the lock's scope and lease, its wait, and the body it guards"
)]
pub async fn locked<L, U, T, F, Fut>(
    locker: &L,
    stack: &str,
    dir: &str,
    operation: Operation,
    lease: Duration,
    wait: Duration,
    ui: &U,
    body: F,
) -> Result<T, NotLocked>
where
    L: Locker,
    U: Ui + ?Sized,
    F: FnOnce(Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + wait;
    let mut said = false;
    let held = loop {
        match locker.lock(stack, operation.clone(), lease).await {
            Ok(h) => break h,
            Err(Taken::Held(r)) if Instant::now() < deadline => {
                if !said {
                    ui.line(&format!(
                        "waiting up to {} for the lock of stack `{stack}`: {} is running `scar {}`",
                        humanize(wait),
                        r.holder,
                        r.operation
                    ));
                    said = true;
                }
                tracing::info!(
                    lock = r.id,
                    holder = r.holder,
                    "waiting for the stack's lock"
                );
                tokio::time::sleep(RETRY.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
            Err(Taken::Held(r)) => {
                ui.error(&r.conflict_message(dir, crate::lock::now()));
                return Err(NotLocked::Held);
            }
            Err(Taken::Failed(e)) => {
                ui.error(&format!(
                    "taking the stack's lock failed: {e}; nothing was written. The lock lives in an S3 bucket of this account (scar-locks-<account>-<region>); if that name is taken or not yours, set SCAR_LOCK_BUCKET to a bucket you own"
                ));
                return Err(NotLocked::Failed);
            }
        }
    };
    tracing::info!(%operation, "took the stack's lock");
    let result = body(L::lost(&held)).await;
    locker.release(held).await;
    Ok(result)
}

/// `1m30s`-style text of a duration, to the second.
fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
