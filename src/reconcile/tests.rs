//! The reconcile step driven by an in-memory cloud and a recording UI: its refusals, a failed
//! read, a partial failure, a lost lock and a saved plan's verdicts, with no AWS and no moto.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use super::*;
use crate::apply::Silent;
use crate::cloud::ErrorKind;
use crate::model::live::{LiveResource, LiveState, Owner};
use crate::model::{DesiredResource, ResourceKind};
use crate::plan::Step;

/// A cloud held in memory: what a refresh finds, which steps fail, what ran.
#[derive(Default)]
struct Memory {
    live: Mutex<LiveState>,
    unreadable: bool,
    failing: BTreeSet<Address>,
    /// Set once a step has run: the lock is gone from then on.
    lose_lock_after_first: bool,
    lost: AtomicBool,
    ran: Mutex<Vec<Address>>,
}

impl Reader for Memory {
    async fn refresh(&self, _: &DesiredGraph) -> Result<LiveState, CloudError> {
        if self.unreadable {
            return Err(CloudError::new(ErrorKind::Transient, "refresh", "503"));
        }
        Ok(self.live.lock().expect("live").clone())
    }
}

struct Session<'a>(&'a Memory);

impl Executor for Session<'_> {
    async fn execute(&self, step: &Step) -> Result<(), CloudError> {
        let memory = self.0;
        memory.ran.lock().expect("ran").push(step.address.clone());
        if memory.lose_lock_after_first {
            memory.lost.store(true, Ordering::SeqCst);
        }
        if memory.failing.contains(&step.address) {
            return Err(CloudError::new(ErrorKind::Other, "write", "refused"));
        }
        Ok(())
    }
}

impl Cloud for Memory {
    type Session<'a> = Session<'a>;

    async fn account_id(&self) -> Result<String, CloudError> {
        Ok("123456789012".into())
    }

    fn session(&self, _: String, _: &str) -> Session<'_> {
        Session(self)
    }
}

impl Memory {
    fn ran(&self) -> Vec<Address> {
        self.ran.lock().expect("ran").clone()
    }
}

/// A UI that answers confirmation as told and keeps what it was shown.
#[derive(Default)]
struct Recorder {
    yes: bool,
    shown: Mutex<usize>,
    said: Mutex<Vec<String>>,
}

impl Ui for Recorder {
    fn show(&self, _: &Plan) -> std::io::Result<()> {
        *self.shown.lock().expect("shown") += 1;
        Ok(())
    }
    fn confirm(&self, _: &Plan) -> bool {
        self.yes
    }
    fn error(&self, message: &str) {
        self.said
            .lock()
            .expect("said")
            .push(format!("error: {message}"));
    }
    fn warn(&self, message: &str) {
        self.said
            .lock()
            .expect("said")
            .push(format!("warning: {message}"));
    }
    fn line(&self, text: &str) {
        self.said.lock().expect("said").push(text.to_owned());
    }
    fn progress(&self) -> &dyn Progress {
        &Silent
    }
}

impl Recorder {
    fn said(&self) -> String {
        self.said.lock().expect("said").join("\n")
    }
}

fn group(name: &str) -> Address {
    Address::new(ResourceKind::LogGroup, name)
}

fn attrs(name: &str, days: i32) -> Map<String, Value> {
    match json!({"name": name, "retention_days": days}) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The stack `s` asking for log groups `names`, kept 7 days.
fn desired(names: &[&str]) -> DesiredGraph {
    DesiredGraph {
        stack: "s".into(),
        region: "us-east-1".into(),
        account_id: None,
        failures_bucket: None,
        delete_empty_buckets: false,
        resources: names
            .iter()
            .map(|n| DesiredResource {
                address: group(n),
                attrs: attrs(n, 7),
                sensitive: Vec::new(),
                depends_on: Vec::new(),
            })
            .collect(),
        ignore_changes: BTreeMap::new(),
    }
}

fn live(resources: &[(Address, i32, Owner)]) -> LiveState {
    let mut l = LiveState::default();
    for (a, days, owner) in resources {
        l.resources.insert(
            a.clone(),
            LiveResource {
                attrs: attrs(&a.name, *days),
                owner: owner.clone(),
                fingerprint: Some(format!("{}-{days}", a.name)),
                outputs: BTreeMap::new(),
            },
        );
    }
    l
}

fn memory(l: LiveState) -> Memory {
    Memory {
        live: Mutex::new(l),
        ..Memory::default()
    }
}

const NEVER: &(dyn Fn() -> bool + Sync) = &|| false;

fn request<'a>(desired: &'a DesiredGraph, apply: Option<Apply<'a>>) -> Request<'a> {
    Request {
        desired,
        set: None,
        destroy: false,
        allow_empty: false,
        show: Show::Always,
        apply,
        targets: &[],
        replace: &[],
        refresh_only: false,
    }
}

fn approved(stop: &(dyn Fn() -> bool + Sync)) -> Apply<'_> {
    Apply {
        auto_approve: true,
        parallelism: 1,
        max_deletes: None,
        dry_run: false,
        stop,
        announce: None,
    }
}

#[tokio::test]
async fn a_failed_read_refuses_and_is_worth_a_retry() {
    let cloud = Memory {
        unreadable: true,
        ..Memory::default()
    };
    let (d, ui) = (desired(&["a"]), Recorder::default());
    let r = reconcile_once(&cloud, &request(&d, Some(approved(NEVER))), &ui)
        .await
        .expect("ran");
    assert!(
        matches!(r, Reconciled::Refused(Refusal::ReadFailed)),
        "{r:?}"
    );
    assert!(r.should_retry());
    assert!(
        ui.said().contains("reading live state failed"),
        "{}",
        ui.said()
    );
    assert!(cloud.ran().is_empty());
}

#[tokio::test]
async fn emptying_a_stack_of_its_functions_is_refused_unless_allowed() {
    let fun = Address::new(ResourceKind::Function, "f");
    let cloud = memory(live(&[(fun.clone(), 7, Owner::ThisStack)]));
    let (d, ui) = (desired(&[]), Recorder::default());
    let r = reconcile_once(&cloud, &request(&d, Some(approved(NEVER))), &ui)
        .await
        .expect("ran");
    assert!(matches!(r, Reconciled::Refused(Refusal::Empty)), "{r:?}");
    assert!(!r.should_retry());
    assert!(cloud.ran().is_empty());
    let mut allowed = request(&d, Some(approved(NEVER)));
    allowed.allow_empty = true;
    let r = reconcile_once(&cloud, &allowed, &ui).await.expect("ran");
    assert!(matches!(r, Reconciled::Applied { .. }), "{r:?}");
    assert_eq!(cloud.ran(), [fun]);
}

#[tokio::test]
async fn more_deletes_than_allowed_and_an_unconfirmed_plan_write_nothing() {
    let owned: Vec<(Address, i32, Owner)> = ["a", "b", "c"]
        .iter()
        .map(|n| (group(n), 7, Owner::ThisStack))
        .collect();
    let cloud = memory(live(&owned));
    let (d, ui) = (desired(&[]), Recorder::default());
    let mut capped = approved(NEVER);
    capped.max_deletes = Some(2);
    let r = reconcile_once(&cloud, &request(&d, Some(capped)), &ui)
        .await
        .expect("ran");
    assert!(
        matches!(r, Reconciled::Refused(Refusal::TooManyDeletes(3))),
        "{r:?}"
    );
    let mut asked = approved(NEVER);
    asked.auto_approve = false;
    let r = reconcile_once(&cloud, &request(&d, Some(asked)), &ui)
        .await
        .expect("ran");
    assert!(
        matches!(r, Reconciled::Refused(Refusal::NotConfirmed)),
        "{r:?}"
    );
    assert!(cloud.ran().is_empty());
}

#[tokio::test]
async fn plan_errors_are_shown_and_nothing_is_written() {
    let cloud = memory(live(&[(group("a"), 14, Owner::OtherStack("t".into()))]));
    let (d, ui) = (desired(&["a"]), Recorder::default());
    let r = reconcile_once(&cloud, &request(&d, Some(approved(NEVER))), &ui)
        .await
        .expect("ran");
    let Reconciled::PlanErrors(plan) = r else {
        panic!("{r:?}");
    };
    assert!(plan.errors[0].message.contains("scar stack `t`"));
    assert_eq!(*ui.shown.lock().expect("shown"), 1);
    assert!(cloud.ran().is_empty());
}

#[tokio::test]
async fn a_quiet_run_shows_nothing_and_a_bad_target_refuses() {
    let cloud = memory(live(&[(group("a"), 7, Owner::ThisStack)]));
    let (d, ui) = (desired(&["a"]), Recorder::default());
    let mut quiet = request(&d, None);
    quiet.show = Show::WhenChanged;
    let r = reconcile_once(&cloud, &quiet, &ui).await.expect("ran");
    assert!(matches!(r, Reconciled::NoChanges(_)), "{r:?}");
    assert_eq!(*ui.shown.lock().expect("shown"), 0);
    let ghost = [group("ghost")];
    let mut narrowed = request(&d, None);
    narrowed.targets = &ghost;
    let r = reconcile_once(&cloud, &narrowed, &ui).await.expect("ran");
    assert!(
        matches!(r, Reconciled::Refused(Refusal::BadAddress)),
        "{r:?}"
    );
    assert!(ui.said().contains("log_group/ghost"), "{}", ui.said());
}

#[tokio::test]
async fn a_failed_step_is_reported_and_the_run_is_worth_a_retry() {
    let mut cloud = memory(LiveState::default());
    cloud.failing.insert(group("b"));
    let (d, ui) = (desired(&["a", "b"]), Recorder::default());
    let r = reconcile_once(&cloud, &request(&d, Some(approved(NEVER))), &ui)
        .await
        .expect("ran");
    let Reconciled::Applied { report, .. } = &r else {
        panic!("{r:?}");
    };
    assert_eq!(report.done.len(), 1);
    assert_eq!(report.failed[0].0, group("b"));
    assert!(r.should_retry());
}

#[tokio::test]
async fn a_lost_lock_starts_no_new_step() {
    let cloud = Memory {
        lose_lock_after_first: true,
        ..memory(LiveState::default())
    };
    let (d, ui) = (desired(&["a", "b", "c"]), Recorder::default());
    let stop = || cloud.lost.load(Ordering::SeqCst);
    let r = reconcile_once(&cloud, &request(&d, Some(approved(&stop))), &ui)
        .await
        .expect("ran");
    let Reconciled::Applied { report, .. } = &r else {
        panic!("{r:?}");
    };
    assert_eq!(cloud.ran().len(), 1, "one step, then the lock was gone");
    assert_eq!(report.skipped.len(), 2);
    assert!(r.should_retry());
}

#[tokio::test]
async fn a_saved_plan_runs_only_while_aws_is_as_it_was() {
    let cloud = memory(live(&[(group("a"), 14, Owner::ThisStack)]));
    let (d, ui) = (desired(&["a"]), Recorder::default());
    let Reconciled::Planned(plan) = reconcile_once(&cloud, &request(&d, None), &ui)
        .await
        .expect("ran")
    else {
        panic!("a plan with a change");
    };
    let file = crate::plan::file::PlanFile {
        format_version: crate::plan::FORMAT_VERSION.into(),
        scar_version: "test".into(),
        dir: "stack".into(),
        desired: d.clone(),
        plan,
    };
    // Someone changed the group since: its fingerprint moved.
    *cloud.live.lock().expect("live") = live(&[(group("a"), 30, Owner::ThisStack)]);
    let r = apply_saved(&cloud, &saved(&file, &d), &ui)
        .await
        .expect("ran");
    assert!(matches!(r, Reconciled::Refused(Refusal::Stale)), "{r:?}");
    assert!(
        ui.said()
            .contains("  - log_group/a changed since the plan was made")
            && ui.said().contains("the saved plan is stale"),
        "{}",
        ui.said()
    );
    assert!(cloud.ran().is_empty());
    // As it was: the fresh plan, equal to the saved one, runs.
    *cloud.live.lock().expect("live") = live(&[(group("a"), 14, Owner::ThisStack)]);
    let r = apply_saved(&cloud, &saved(&file, &d), &ui)
        .await
        .expect("ran");
    assert!(matches!(r, Reconciled::Applied { .. }), "{r:?}");
    assert_eq!(cloud.ran(), [group("a")]);
    // Manifests that changed since are refused before AWS is read.
    let other = desired(&["a", "b"]);
    let r = apply_saved(&cloud, &saved(&file, &other), &ui)
        .await
        .expect("ran");
    assert!(matches!(r, Reconciled::Refused(Refusal::Stale)), "{r:?}");
}

fn saved<'a>(file: &'a crate::plan::file::PlanFile, desired: &'a DesiredGraph) -> Saved<'a> {
    Saved {
        file,
        shown: "plan.json",
        desired,
        set: None,
        parallelism: 1,
        stop: NEVER,
    }
}
