//! A whole workflow run here: each invocation's uploads are matched to the stack's function
//! inputs with S3's own notification rule (bucket, prefix, suffix, events: the rule
//! `scar validate` proves workflow edges with), and the functions they start run in turn,
//! until nothing is left. Invocations run `concurrency` at once.

use super::LocalError;
use std::collections::VecDeque;
use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::json;

use super::runner::RunResult;
use super::stack::Function;
use crate::manifest::check::fires;

/// An invocation to make: a function and its event.
#[derive(Debug, Clone)]
pub struct Start {
    /// The function's index in the list the run was given.
    pub function: usize,
    /// What it runs on, for people (`s3://bucket/key`, `event`).
    pub input: String,
    /// The event.
    pub event: Vec<u8>,
}

/// One invocation made.
#[derive(Debug)]
pub struct Step {
    /// Its number, from 1, in the order invocations started.
    pub id: usize,
    /// The invocation whose upload started it; `None` for a first one.
    pub parent: Option<usize>,
    /// The function's index.
    pub function: usize,
    /// What it ran on.
    pub input: String,
    /// How it went; `Err` when it could not run at all.
    pub result: Result<RunResult, LocalError>,
    /// The invocations it started.
    pub started: Vec<Start>,
}

impl Step {
    /// True when it ran and worked.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.result.as_ref().is_ok_and(|r| r.failure.is_none())
    }
}

/// S3's encoding of a key in an event notification: each segment percent-encoded, a space
/// as `+`, the `/` between segments kept.
fn event_key(key: &str) -> String {
    key.split('/')
        .map(|segment| crate::text::percent_encode(segment).replace("%20", "+"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The event S3 sends a function when `key` is created in `bucket`.
#[must_use]
pub fn s3_event(region: &str, bucket: &str, key: &str) -> serde_json::Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": event_key(key)},
        },
    }]})
}

/// The invocations that function `from`'s uploads start: an upload to the stack's own S3 (an
/// output with no storage provider) of `from`, matched against every function's inputs. A
/// function with several inputs that match runs once per object, as S3 rejects overlapping
/// notification rules on a bucket.
#[must_use]
pub fn started_by(
    functions: &[Function],
    from: usize,
    uploaded: &[String],
    region: &str,
) -> Vec<Start> {
    let mut out = Vec::new();
    for url in uploaded {
        let Some((bucket, key)) = url.strip_prefix("s3://").and_then(|r| r.split_once('/')) else {
            continue;
        };
        let own = functions[from].outputs.iter().any(|o| {
            o.provider.is_none()
                && o.bucket == bucket
                && key.starts_with(o.prefix.as_deref().unwrap_or(""))
        });
        if !own {
            continue;
        }
        for (g, f) in functions.iter().enumerate() {
            if f.inputs.iter().any(|i| fires(i, bucket, key)) {
                out.push(Start {
                    function: g,
                    input: url.clone(),
                    event: s3_event(region, bucket, key).to_string().into_bytes(),
                });
            }
        }
    }
    out
}

/// Runs `starts` and every invocation their uploads start, `concurrency` at once, at most
/// `limit` in all (a guard: `scar validate` rejects cycles, but a run must end). `run` makes
/// one invocation; `seen` hears each as it ends. Returns them in the order they ended. The
/// `starts` get the ids 1 to n, in their order (`scar retry --local` finds its inputs so).
pub async fn run_all<F, Fut>(
    functions: &[Function],
    starts: Vec<Start>,
    concurrency: usize,
    limit: usize,
    region: &str,
    run: F,
    seen: &(dyn Fn(&Step) + Sync),
) -> Vec<Step>
where
    F: Fn(usize, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<RunResult, LocalError>>,
{
    let mut pending: VecDeque<(Option<usize>, Start)> =
        starts.into_iter().map(|s| (None, s)).collect();
    let mut running = FuturesUnordered::new();
    let mut steps = Vec::new();
    let mut next_id = 1;
    loop {
        while running.len() < concurrency.max(1) {
            let Some((parent, start)) = pending.pop_front() else {
                break;
            };
            let id = next_id;
            next_id += 1;
            let result = if id > limit {
                Err(LocalError::Limit(limit))
            } else {
                Ok(())
            };
            let fut = run(start.function, start.event.clone());
            running.push(async move {
                let result = match result {
                    Ok(()) => fut.await,
                    Err(e) => Err(e),
                };
                (id, parent, start, result)
            });
        }
        let Some((id, parent, start, result)) = running.next().await else {
            break;
        };
        let started = match &result {
            Ok(r) => started_by(functions, start.function, &r.uploaded, region),
            Err(_) => Vec::new(),
        };
        pending.extend(started.iter().cloned().map(|s| (Some(id), s)));
        let step = Step {
            id,
            parent,
            function: start.function,
            input: start.input,
            result,
            started,
        };
        seen(&step);
        steps.push(step);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_encodes_them_in_events() {
        assert_eq!(event_key("in/a b/c+d é.txt"), "in/a+b/c%2Bd+%C3%A9.txt");
        let e = s3_event("us-east-1", "b", "in/x y.txt");
        assert_eq!(e["Records"][0]["s3"]["object"]["key"], "in/x+y.txt");
        assert_eq!(e["Records"][0]["s3"]["bucket"]["name"], "b");
    }
}
