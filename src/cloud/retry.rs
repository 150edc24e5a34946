//! Retrying AWS calls: throttling and transient failures back off exponentially with full
//! jitter, each retry logged so it shows in `-v` output and JSON logs.
//!
//! Policy (named, like kube-runtime's `DefaultBackoff`): first delay 200 ms, doubling, capped
//! at 10 s, at most 8 attempts; the AWS SDKs' standard mode uses the same shape (exponential,
//! full jitter) with 3 attempts, which is too few for a 500-function apply under a shared
//! 15 req/s quota.

use std::future::Future;
use std::time::Duration;

use super::CloudError;

/// A backoff policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Attempts in all, the first included.
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            attempts: 8,
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `n` (1 for the first retry).
    #[must_use]
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry `n`: uniformly random below the ceiling ("full jitter").
    #[must_use]
    pub fn delay(&self, n: u32) -> Duration {
        self.ceiling(n).mul_f64(jitter())
    }
}

/// A number in [0.5, 1): enough spread to break lockstep, never a zero wait.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    let bits = h.finish();
    #[expect(
        clippy::cast_precision_loss,
        reason = "53 random bits are plenty for a jitter factor"
    )]
    let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
    0.5 + unit / 2.0
}

/// Runs `call` until it succeeds, fails with a non-retryable error, or runs out of attempts.
///
/// # Errors
/// The last error.
pub async fn with_retry<T, F, Fut>(backoff: Backoff, what: &str, call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    retry_while(backoff, what, CloudError::is_retryable, call).await
}

/// How long a new IAM role may take to be usable everywhere: about a minute and a half.
pub const PROPAGATION: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(10),
    attempts: 14,
};

/// Runs `call` again while it fails with [`ErrorKind::NotReady`](super::ErrorKind::NotReady)
/// (what it needs was made a moment ago and has not propagated), backing off as `backoff`
/// says; any other error ends it.
///
/// # Errors
/// The last error.
pub async fn until_ready<T, F, Fut>(backoff: Backoff, what: &str, call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    retry_while(
        backoff,
        what,
        |e| e.kind == super::ErrorKind::NotReady,
        call,
    )
    .await
}

/// Runs `call` until it succeeds, fails with an error `again` does not accept, or runs out of
/// attempts; each retry is logged.
async fn retry_while<T, F, Fut>(
    backoff: Backoff,
    what: &str,
    again: impl Fn(&CloudError) -> bool,
    mut call: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if again(&e) && attempt < backoff.attempts => {
                let delay = backoff.delay(attempt);
                tracing::warn!(
                    op = %e.op,
                    target_resource = what,
                    attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %e.message,
                    "retrying after {:?} failure", e.kind
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn ceilings_double_and_cap() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(2), Duration::from_millis(400));
        assert_eq!(b.ceiling(10), Duration::from_secs(10));
        for n in 1..10 {
            let d = b.delay(n);
            assert!(d <= b.ceiling(n) && d >= b.ceiling(n) / 2);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_then_succeeds() {
        let calls = AtomicU32::new(0);
        let r = with_retry(Backoff::default(), "function/x", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(CloudError::new(
                    ErrorKind::Throttled,
                    "lambda:GetFunction",
                    "Rate exceeded",
                ))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_not_retried_and_attempts_are_bounded() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = with_retry(Backoff::default(), "x", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::new(ErrorKind::Invalid, "op", "bad"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = with_retry(Backoff::default(), "x", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::new(ErrorKind::Transient, "op", "503"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_role_not_yet_assumable_is_waited_for_and_nothing_else_is() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let r = until_ready(PROPAGATION, "function/x", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 5 {
                Err(CloudError::new(
                    ErrorKind::NotReady,
                    "lambda:CreateFunction",
                    "The role defined for the function cannot be assumed by Lambda.",
                ))
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        // 1 + 2 + 4 + 8 + 10 s at most, at least half of it (jitter).
        assert!(started.elapsed() >= Duration::from_millis(12_500));
        // A throttle is not a propagation delay: with_retry's business, not this loop's.
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = until_ready(PROPAGATION, "x", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::new(ErrorKind::Throttled, "op", "Rate exceeded"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Bounded: a role that never becomes assumable fails after PROPAGATION's attempts.
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = until_ready(PROPAGATION, "x", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CloudError::new(
                ErrorKind::NotReady,
                "op",
                "cannot be assumed",
            ))
        })
        .await;
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::NotReady));
        assert_eq!(calls.load(Ordering::SeqCst), PROPAGATION.attempts);
    }
}
