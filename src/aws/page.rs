//! One way to read a paginated AWS list, and one way to wait for a resource to settle.
//!
//! Every list call that pages (Batch's `Describe*`, the tagging API, API Gateway's `GetRestApis`,
//! CloudWatch Logs, S3 listings) goes through [`pages`]; every wait (a Lambda function until it
//! is `Active` and its last update `Successful`, a Batch resource until `VALID`) goes through
//! [`wait_until`] with one readiness type, [`Readiness`].

use std::future::Future;
use std::time::Duration;

use crate::apply::ready::Readiness;
use crate::cloud::retry::Backoff;
use crate::cloud::{CloudError, ErrorKind};

/// More pages than any account holds in one list: a server that never stops paging is broken.
const MAX_PAGES: usize = 10_000;

/// Every page of a list, in order: `fetch(token)` gets the page after `token` (`None` for the
/// first), and `next` says the token after a page. No token, an empty one, or the one just
/// used ends the list.
pub(super) async fn pages<P, F, Fut>(
    op: &str,
    mut fetch: F,
    next: impl Fn(&P) -> Option<&str>,
) -> Result<Vec<P>, CloudError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<P, CloudError>>,
{
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = fetch(token.clone()).await?;
        let after = next(&page)
            .filter(|t| !t.is_empty() && token.as_deref() != Some(*t))
            .map(str::to_owned);
        all.push(page);
        match after {
            Some(t) if all.len() < MAX_PAGES => token = Some(t),
            Some(_) => {
                return Err(CloudError::new(
                    ErrorKind::Other,
                    op,
                    format!("the list did not end after {MAX_PAGES} pages"),
                ));
            }
            None => return Ok(all),
        }
    }
}

/// Looks at a resource with `look` until it is ready, backing off between looks (`poll`).
/// [`Readiness::Failed`]'s message is the error's; after `timeout`, `late` makes the error's
/// message from what the last look saw. `op` is the operation errors carry (`lambda:wait`).
pub(super) async fn wait_until<F, Fut>(
    op: &str,
    timeout: Duration,
    poll: Backoff,
    mut look: F,
    late: impl FnOnce(&str) -> String,
) -> Result<(), CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Readiness, CloudError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut n = 1;
    loop {
        match look().await? {
            Readiness::Ready => return Ok(()),
            Readiness::Failed(why) => return Err(CloudError::new(ErrorKind::Other, op, why)),
            Readiness::Pending(seen) if tokio::time::Instant::now() >= deadline => {
                return Err(CloudError::new(ErrorKind::Other, op, late(&seen)));
            }
            Readiness::Pending(seen) => {
                tracing::debug!(op, seen, "waiting");
                tokio::time::sleep(poll.delay(n)).await;
                n += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages_of(tokens: &[Option<&'static str>]) -> Vec<Option<&'static str>> {
        tokens.to_vec()
    }

    #[tokio::test]
    async fn pages_follow_tokens_until_none_empty_or_repeated() {
        for (answers, want) in [
            (pages_of(&[Some("a"), Some("b"), None]), 3),
            (pages_of(&[Some("a"), Some("")]), 2),
            (pages_of(&[Some("a"), Some("a"), Some("b")]), 2),
            (pages_of(&[None]), 1),
        ] {
            let mut asked = Vec::new();
            let got = pages(
                "test:List",
                |token| {
                    asked.push(token);
                    let page = answers[asked.len() - 1];
                    async move { Ok::<_, CloudError>(page) }
                },
                |p| *p,
            )
            .await
            .expect("pages");
            assert_eq!(got.len(), want, "{answers:?}");
            assert_eq!(asked[0], None, "the first page is asked for with no token");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_end_ready_failed_or_timed_out() {
        let poll = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
            attempts: 1,
        };
        let minute = Duration::from_secs(60);
        let late = |seen: &str| format!("late, last seen {seen}");
        let mut looks = 0;
        let ready = wait_until(
            "lambda:wait",
            minute,
            poll,
            || {
                looks += 1;
                let r = if looks < 3 {
                    Readiness::Pending("Pending".into())
                } else {
                    Readiness::Ready
                };
                async move { Ok(r) }
            },
            late,
        )
        .await;
        assert_eq!((ready, looks), (Ok(()), 3));
        let failed = wait_until(
            "lambda:wait",
            minute,
            poll,
            || async { Ok(Readiness::Failed("function f failed: bad image".into())) },
            late,
        )
        .await
        .expect_err("failed");
        assert_eq!(failed.message, "function f failed: bad image");
        let started = tokio::time::Instant::now();
        let timed_out = wait_until(
            "lambda:wait",
            Duration::from_secs(5),
            poll,
            || async { Ok(Readiness::Pending("Pending".into())) },
            late,
        )
        .await
        .expect_err("timed out");
        assert_eq!(timed_out.message, "late, last seen Pending");
        assert!(started.elapsed() >= Duration::from_secs(5));
    }
}
