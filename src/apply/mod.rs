//! Apply: execute a plan's steps in dependency order with bounded parallelism.
//!
//! # Guarantees
//! - A step starts only after every step it depends on succeeded.
//! - After a failure no new step starts; steps in flight finish; the rest are reported
//!   skipped. Rerunning converges: every step is idempotent against what the last run left.
//! - The engine prints nothing: progress goes through [`Progress`] (Terraform's hook idea).

pub mod ready;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use crate::cloud::CloudError;
use crate::model::live::LiveState;
use crate::model::{Address, DesiredGraph};
use crate::plan::{Action, Plan, Step};

/// Something that reads live state (the AWS adapter, or a fake in tests): the read port,
/// beside [`Executor`], the write port. Reconciling needs nothing else from a cloud.
pub trait Reader: Sync {
    /// Reads everything `desired` names and everything its stack owns.
    fn refresh(
        &self,
        desired: &DesiredGraph,
    ) -> impl Future<Output = Result<LiveState, CloudError>> + Send;
}

/// Something that carries out one step (the AWS adapter, or a fake in tests).
pub trait Executor: Sync {
    /// Executes `step`.
    fn execute(&self, step: &Step) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Receives progress events.
pub trait Progress: Sync {
    /// A step started.
    fn started(&self, step: &Step);
    /// A step ended.
    fn finished(&self, step: &Step, result: &Result<(), CloudError>, took: Duration);
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _: &Step) {}
    fn finished(&self, _: &Step, _: &Result<(), CloudError>, _: Duration) {}
}

/// What an apply did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Steps that succeeded, with their action.
    pub done: Vec<(Address, Action)>,
    /// Steps that failed, with the error.
    pub failed: Vec<(Address, CloudError)>,
    /// Steps never started because an earlier step failed.
    pub skipped: Vec<Address>,
}

impl Report {
    /// Counts in Terraform's words: added, changed, destroyed.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for (_, a) in &self.done {
            match a {
                Action::Create => c.0 += 1,
                Action::Update => c.1 += 1,
                Action::Replace => {
                    c.0 += 1;
                    c.2 += 1;
                }
                Action::Delete => c.2 += 1,
                Action::NoOp => {}
            }
        }
        c
    }

    /// True when nothing failed.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Runs `plan` with at most `parallelism` steps at once.
pub async fn run<E: Executor, P: Progress + ?Sized>(
    executor: &E,
    plan: &Plan,
    parallelism: usize,
    progress: &P,
) -> Report {
    run_until(executor, plan, parallelism, progress, &|| false).await
}

/// [`run`], except that once `stop()` says so (a signal, a lost lock) no new step starts:
/// steps in flight finish and the rest are reported skipped, as after a failure.
pub async fn run_until<E: Executor, P: Progress + ?Sized>(
    executor: &E,
    plan: &Plan,
    parallelism: usize,
    progress: &P,
    stop: &(dyn Fn() -> bool + Sync),
) -> Report {
    let steps: Vec<&Step> = plan.changes().collect();
    let index: BTreeMap<&Address, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (&s.address, i))
        .collect();
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    let mut report = Report::default();
    let mut failed = false;
    let mut in_flight = FuturesUnordered::new();
    loop {
        if !failed && !stop() {
            for (i, step) in steps.iter().enumerate() {
                if in_flight.len() >= parallelism.max(1) {
                    break;
                }
                if started.contains(&i) {
                    continue;
                }
                let ready = step
                    .depends_on
                    .iter()
                    .all(|d| index.get(d).is_none_or(|j| done.contains(j)));
                if ready {
                    started.insert(i);
                    progress.started(step);
                    in_flight.push(async move {
                        let t = Instant::now();
                        let r = executor.execute(step).await;
                        (i, r, t.elapsed())
                    });
                }
            }
        }
        let Some((i, result, took)) = in_flight.next().await else {
            break;
        };
        let step = steps[i];
        progress.finished(step, &result, took);
        match result {
            Ok(_) => {
                done.insert(i);
                report.done.push((step.address.clone(), step.action));
            }
            Err(e) => {
                failed = true;
                report.failed.push((step.address.clone(), e));
            }
        }
    }
    report.skipped = steps
        .iter()
        .enumerate()
        .filter(|(i, _)| !started.contains(i))
        .map(|(_, s)| s.address.clone())
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorKind;
    use crate::model::ResourceKind;
    use std::sync::Mutex;

    struct Fake {
        log: Mutex<Vec<String>>,
        fail: Option<Address>,
    }

    impl Executor for Fake {
        async fn execute(&self, step: &Step) -> Result<(), CloudError> {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Ok(mut l) = self.log.lock() {
                l.push(step.address.to_string());
            }
            if self.fail.as_ref() == Some(&step.address) {
                return Err(CloudError::new(ErrorKind::Invalid, "op", "boom"));
            }
            Ok(())
        }
    }

    fn step(kind: ResourceKind, name: &str, deps: &[Address]) -> Step {
        Step::bare(kind, name, Action::Create, deps)
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan::bare(steps)
    }

    fn chain() -> Plan {
        let lg = Address::new(ResourceKind::LogGroup, "f");
        let f = Address::new(ResourceKind::Function, "f");
        let b = Address::new(ResourceKind::Bucket, "b");
        let p = Address::new(ResourceKind::LambdaPermission, "f/s3:b");
        plan(vec![
            step(ResourceKind::LogGroup, "f", &[]),
            step(ResourceKind::Bucket, "b", &[]),
            step(ResourceKind::Function, "f", &[lg]),
            step(
                ResourceKind::LambdaPermission,
                "f/s3:b",
                &[f.clone(), b.clone()],
            ),
            step(ResourceKind::S3Trigger, "b:t", &[f, b, p]),
        ])
    }

    #[tokio::test(start_paused = true)]
    async fn dependencies_run_first() {
        let fake = Fake {
            log: Mutex::new(Vec::new()),
            fail: None,
        };
        let report = run(&fake, &chain(), 4, &Silent).await;
        assert!(report.ok());
        assert_eq!(report.counts(), (5, 0, 0));
        let log = fake.log.lock().expect("log").clone();
        let pos = |a: &str| log.iter().position(|x| x == a).expect("ran");
        assert!(pos("log_group/f") < pos("function/f"));
        assert!(pos("function/f") < pos("lambda_permission/f/s3:b"));
        assert!(pos("lambda_permission/f/s3:b") < pos("s3_trigger/b:t"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_stops_new_steps_and_reports_the_rest_skipped() {
        let fake = Fake {
            log: Mutex::new(Vec::new()),
            fail: Some(Address::new(ResourceKind::Function, "f")),
        };
        let report = run(&fake, &chain(), 1, &Silent).await;
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0.to_string(), "function/f");
        let skipped: Vec<String> = report.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(skipped, ["lambda_permission/f/s3:b", "s3_trigger/b:t"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_lets_steps_in_flight_finish_and_starts_no_more() {
        let fake = Fake {
            log: Mutex::new(Vec::new()),
            fail: None,
        };
        let stop = || fake.log.lock().map(|l| l.len() >= 2).unwrap_or(true);
        let report = run_until(&fake, &chain(), 1, &Silent, &stop).await;
        assert!(report.ok(), "a stop is not a failure");
        assert_eq!(report.done.len(), 2);
        assert_eq!(report.skipped.len(), 3);
    }
}
