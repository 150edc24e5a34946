//! The one reconcile step `plan`, `apply`, `destroy` and `watch` share: read live state, check
//! it, plan, show the plan, and (when asked) apply it. Each command decides only what to ask
//! for and what the typed [`Reconciled`] outcome means for it (an exit code, a watch log line,
//! the delay before the next watch run).

use super::exit::Failure;
use super::output::Output;
use super::output::print_plan;
use super::{PlanFormat, session};
use crate::apply::{Reader, Report};
use crate::aws::AwsCloud;
use crate::manifest::ManifestSet;
use crate::model::{Address, DesiredGraph};
use crate::plan::Plan;

/// When to print the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Show {
    /// Always, in this format (`plan`, `apply`: "No changes." is news there).
    Always(PlanFormat),
    /// As text, only when it has changes or errors (`watch`: a quiet run prints nothing).
    WhenChanged,
}

/// What to do once the plan is made.
pub(super) struct Apply<'a> {
    /// Apply without asking (`--auto-approve`; always for `watch`).
    pub auto_approve: bool,
    /// Steps at once.
    pub parallelism: usize,
    /// Refuse plans that delete more than this many resources (`watch --max-deletes`).
    pub max_deletes: Option<usize>,
    /// Plan, but never apply (`watch --dry-run`).
    pub dry_run: bool,
    /// True once no new step may start (a stop signal, a lost lock).
    pub stop: &'a (dyn Fn() -> bool + Sync),
    /// Called with the plan just before its first step starts.
    pub announce: Option<&'a (dyn Fn(&Plan) + Sync)>,
}

/// One reconcile step's request.
pub(super) struct Request<'a> {
    /// What the manifests ask for.
    pub desired: &'a DesiredGraph,
    /// The manifests, to draw the workflow for a plan that reshapes it (Markdown shows it).
    pub set: Option<&'a ManifestSet>,
    /// Plan the deletion of everything the stack owns.
    pub destroy: bool,
    /// Allow deleting every function of the stack.
    pub allow_empty: bool,
    /// When to print the plan.
    pub show: Show,
    /// Apply it, or only plan (`None`).
    pub apply: Option<Apply<'a>>,
    /// `--target`: narrow the plan to these and what they depend on (none: the whole stack).
    pub targets: &'a [Address],
    /// `--replace`: replace these though nothing forces it.
    pub replace: &'a [Address],
    /// `--refresh-only`: keep only the changes made outside scar (never applied).
    pub refresh_only: bool,
}

/// Why a step wrote nothing (the reason is printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Reading live state, or the account, failed.
    ReadFailed,
    /// The plan would delete every function, and that was not allowed.
    Empty,
    /// The plan deletes more than `--max-deletes` resources (how many).
    TooManyDeletes(usize),
    /// Nobody confirmed.
    NotConfirmed,
    /// A `--target` or `--replace` address the plan cannot take.
    BadAddress,
}

/// How one reconcile step ended.
#[derive(Debug)]
pub(super) enum Reconciled {
    /// Nothing was written, for this reason.
    Refused(Refusal),
    /// The plan has errors (printed): nothing was written.
    PlanErrors(Plan),
    /// Live state already matches.
    NoChanges(Plan),
    /// Planned and not applied (plan mode, a dry run).
    Planned(Plan),
    /// Applied: the report says what was done, what failed and what never started.
    Applied {
        /// The plan that ran.
        plan: Plan,
        /// What happened.
        report: Report,
    },
}

impl Reconciled {
    /// True when the step could not converge for a reason a retry may cure (AWS could not be
    /// read, a step failed or never started): watch retries these sooner, backing off. Refusals
    /// wait for a person or a file change.
    pub(super) fn should_retry(&self) -> bool {
        match self {
            Reconciled::Refused(r) => *r == Refusal::ReadFailed,
            Reconciled::Applied { report, .. } => !report.ok() || !report.skipped.is_empty(),
            Reconciled::PlanErrors(_) | Reconciled::NoChanges(_) | Reconciled::Planned(_) => false,
        }
    }
}

/// Reads live state, checks it, plans, prints and (when asked) applies.
pub(super) async fn reconcile_once(
    cloud: &AwsCloud,
    request: &Request<'_>,
    out: &Output,
) -> Result<Reconciled, Failure> {
    let desired = request.desired;
    let live = match Reader::refresh(cloud, &desired.to_read(request.destroy)).await {
        Ok(l) => l,
        Err(e) => {
            session::cloud_failed(out, "reading live state failed", &e);
            return Ok(Reconciled::Refused(Refusal::ReadFailed));
        }
    };
    // `destroy` deletes every function by definition; `plan --destroy` does not ask.
    if session::check_empty(desired, &live, request.allow_empty || request.destroy, out).is_err() {
        return Ok(Reconciled::Refused(Refusal::Empty));
    }
    let mut plan = session::build_plan(desired, &live, request.destroy);
    plan = match session::shape(plan, request.replace, request.targets) {
        Ok(p) => p,
        Err(e) => {
            out.error(&e);
            return Ok(Reconciled::Refused(Refusal::BadAddress));
        }
    };
    if !request.targets.is_empty() {
        out.warn("the plan is partial (--target): changes to other resources are left out; run a full plan afterwards");
    }
    if request.refresh_only {
        plan = crate::plan::target::drift_only(plan);
    }
    if plan.reshapes_workflow()
        && !request.destroy
        && let Some(set) = request.set
    {
        plan.workflow_graph = Some(crate::render::graph::build(set).mermaid());
    }
    let changed = plan.has_changes() || !plan.errors.is_empty();
    match request.show {
        Show::Always(format) => print_plan(&plan, format, out)?,
        Show::WhenChanged if changed => print_plan(&plan, PlanFormat::Text, out)?,
        Show::WhenChanged => {}
    }
    if !plan.errors.is_empty() {
        return Ok(Reconciled::PlanErrors(plan));
    }
    if !plan.has_changes() {
        return Ok(Reconciled::NoChanges(plan));
    }
    let Some(apply) = &request.apply else {
        return Ok(Reconciled::Planned(plan));
    };
    let deletes = plan.summary().destroy;
    if let Some(max) = apply.max_deletes
        && deletes > max
    {
        return Ok(Reconciled::Refused(Refusal::TooManyDeletes(deletes)));
    }
    if apply.dry_run {
        return Ok(Reconciled::Planned(plan));
    }
    if session::confirm(&plan, apply.auto_approve, out).is_err() {
        return Ok(Reconciled::Refused(Refusal::NotConfirmed));
    }
    if let Some(announce) = apply.announce {
        announce(&plan);
    }
    match execute(cloud, &plan, apply.parallelism, apply.stop, out).await {
        Some(report) => Ok(Reconciled::Applied { plan, report }),
        None => Ok(Reconciled::Refused(Refusal::ReadFailed)),
    }
}

/// Executes `plan`'s steps with progress lines, starting no new step once `stop()` says so;
/// `None` when the account cannot be told (printed).
pub(super) async fn execute(
    cloud: &AwsCloud,
    plan: &Plan,
    parallelism: usize,
    stop: &(dyn Fn() -> bool + Sync),
    out: &Output,
) -> Option<Report> {
    let account = match cloud.account_id().await {
        Ok(a) => a,
        Err(e) => {
            session::cloud_failed(out, "cannot tell the account", &e);
            return None;
        }
    };
    eprintln!();
    let session = crate::aws::AccountSession {
        cloud,
        account,
        stack: plan.stack.clone(),
    };
    Some(crate::apply::run_until(&session, plan, parallelism, &super::progress::Lines, stop).await)
}
