//! `scar retry` in AWS: each failed input's original event invoked again, synchronously (so
//! that scar learns how it went), as many times as the function's `retryAttempts` allow
//! Lambda, then its record settled: deleted when the input succeeded, replaced by a newer
//! record when it failed again. A record is marked while its retry runs, so that a second
//! `scar retry` started meanwhile leaves it alone.

use futures::stream::{self, StreamExt};
use serde_json::Value;

use super::store;
use super::{Failure, LastAttempt};
use crate::aws::AwsCloud;

/// One input to retry: its record, and how many invocations it may take.
#[derive(Debug, Clone)]
pub struct Retry {
    /// The record.
    pub failure: Failure,
    /// Invocations to make at most: 1 + the function's `retryAttempts`.
    pub tries: u32,
}

/// How a retry ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The input was processed; its record is deleted.
    Succeeded {
        /// Invocations made.
        attempts: u32,
    },
    /// It failed every time; a new record replaces the old one.
    FailedAgain {
        /// Invocations made.
        attempts: u32,
        /// The new record, `s3://...`.
        record: String,
    },
    /// It could not be run, or its record not settled (why): the record stands.
    NotRun(String),
}

/// What one invocation of a retry answered: `Ok` with the answer when the function worked,
/// `Err` with what it answered when it failed.
pub type Answer = Result<(), LastAttempt>;

/// Retries `items`, `concurrency` at once: `invoke(function, event)` makes one invocation
/// (`Err(why)` when it could not be made at all); `seen` hears each input as it settles.
pub async fn run<F, Fut>(
    cloud: &AwsCloud,
    items: Vec<Retry>,
    concurrency: usize,
    invoke: F,
    seen: &(dyn Fn(&Failure, &Settled) + Sync),
) -> Vec<(Failure, Settled)>
where
    F: Fn(String, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, String>>,
{
    let invoke = &invoke;
    stream::iter(items)
        .map(|item| async move {
            let settled = one(cloud, &item, invoke).await;
            seen(&item.failure, &settled);
            (item.failure, settled)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

async fn one<F, Fut>(cloud: &AwsCloud, item: &Retry, invoke: &F) -> Settled
where
    F: Fn(String, Value) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, String>>,
{
    let f = &item.failure;
    if let Err(e) = store::mark(cloud, f).await {
        return Settled::NotRun(format!("marking its record: {e}"));
    }
    let mut attempts = 0;
    let last = loop {
        attempts += 1;
        match invoke(f.function.clone(), f.event.clone()).await {
            Err(why) => {
                // Nothing ran: the record stands, unmarked.
                let _ = store::unmark(cloud, f).await;
                return Settled::NotRun(why);
            }
            Ok(Ok(())) => break None,
            Ok(Err(last)) if attempts >= item.tries.max(1) => break Some(last),
            Ok(Err(_)) => {}
        }
    };
    let settled = match last {
        None => Settled::Succeeded { attempts },
        Some(last) => {
            let Some((bucket, _)) = f.location() else {
                return Settled::NotRun(format!("{} is not an s3:// address", f.record));
            };
            match store::write(
                cloud,
                bucket,
                &f.function,
                &f.function_arn,
                attempts,
                &f.event,
                &last,
            )
            .await
            {
                Ok(record) => Settled::FailedAgain { attempts, record },
                Err(e) => return Settled::NotRun(format!("writing its new record: {e}")),
            }
        }
    };
    match store::settle(cloud, f).await {
        Ok(()) => settled,
        Err(e) => Settled::NotRun(format!("deleting its record after the retry: {e}")),
    }
}
