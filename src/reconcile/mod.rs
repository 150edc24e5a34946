//! The one reconcile step: read live state, make the plan ([`crate::plan::prepare`]), show it,
//! and (when asked) apply it. `plan`, `apply` (of a directory, and of a saved plan through
//! [`apply_saved`]), `destroy` and `watch` all run it; each decides only what to ask for and
//! what the typed [`Reconciled`] outcome means for it (an exit code, a watch log line, the delay
//! before the next watch run).
//!
//! It is written against two ports, so that its refusals, a lost lock and a partial failure are
//! tested with an in-memory cloud: a [`Cloud`] (reads live state, tells the account, and opens
//! an [`Executor`] that carries out steps; the AWS adapter is one) and a [`Ui`] (shows the plan,
//! asks for confirmation, reports; the command line is one).

pub mod lock;
#[cfg(test)]
mod tests;

use std::future::Future;

use crate::apply::{Executor, Progress, Reader, Report};
use crate::cloud::CloudError;
use crate::manifest::ManifestSet;
use crate::model::{Address, DesiredGraph};
use crate::plan::Plan;
use crate::plan::prepare::{Refused, Shape, prepare};
use crate::plan::verify::{self, Verdict};

/// What a reconcile step needs of a cloud besides reading it: who it is, and something that
/// carries out a plan's steps there.
pub trait Cloud: Reader {
    /// Carries out steps of `stack`'s plan in `account`.
    type Session<'a>: Executor
    where
        Self: 'a;

    /// The account the credentials belong to.
    fn account_id(&self) -> impl Future<Output = Result<String, CloudError>> + Send;

    /// Something that carries out `stack`'s steps in `account`.
    fn session(&self, account: String, stack: &str) -> Self::Session<'_>;
}

/// Where a reconcile step shows what it does, and asks.
pub trait Ui: Sync {
    /// Shows a plan (in the format the command was asked for).
    ///
    /// # Errors
    /// When it cannot be written (a closed pipe).
    fn show(&self, plan: &Plan) -> std::io::Result<()>;

    /// Asks whether to carry `plan` out; `false` refuses (having said why).
    fn confirm(&self, plan: &Plan) -> bool;

    /// Reports an error.
    fn error(&self, message: &str);

    /// Reports a warning.
    fn warn(&self, message: &str);

    /// Writes a line of a report as it is (the differences under a refusal).
    fn line(&self, text: &str);

    /// Hears each step start and end.
    fn progress(&self) -> &dyn Progress;
}

/// When to show the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Always (`plan`, `apply`: "No changes." is news there).
    Always,
    /// Only when it has changes or errors (`watch`: a quiet run shows nothing).
    WhenChanged,
}

/// What to do once the plan is made.
pub struct Apply<'a> {
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
pub struct Request<'a> {
    /// What the manifests ask for.
    pub desired: &'a DesiredGraph,
    /// The manifests, to draw the workflow for a plan that reshapes it (Markdown shows it).
    pub set: Option<&'a ManifestSet>,
    /// Plan the deletion of everything the stack owns.
    pub destroy: bool,
    /// Allow deleting every function of the stack.
    pub allow_empty: bool,
    /// When to show the plan.
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

/// Why a step wrote nothing (the reason was reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
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
    /// A saved plan that is not the plan the manifests and AWS give now.
    Stale,
}

/// How one reconcile step ended.
#[derive(Debug)]
pub enum Reconciled {
    /// Nothing was written, for this reason.
    Refused(Refusal),
    /// The plan has errors (shown): nothing was written.
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
    #[must_use]
    pub fn should_retry(&self) -> bool {
        match self {
            Reconciled::Refused(r) => *r == Refusal::ReadFailed,
            Reconciled::Applied { report, .. } => !report.ok() || !report.skipped.is_empty(),
            Reconciled::PlanErrors(_) | Reconciled::NoChanges(_) | Reconciled::Planned(_) => false,
        }
    }
}

/// Whether this machine can put a supervisor into an image for `architecture` (OCI's name).
///
/// # Errors
/// Why not.
pub fn has_supervisor(architecture: &str) -> Result<(), String> {
    crate::image::Arch::from_oci(architecture)
        .ok_or_else(|| format!("scar builds no images for the architecture `{architecture}`"))
        .and_then(|a| crate::image::supervisor::find(a).map_err(|e| e.to_string()))
        .map(|_| ())
}

/// The plan of `desired` against `live` as `shape` asks (the supervisors this machine has
/// checked), with the workflow drawn when it reshapes it and `set` is given.
///
/// # Errors
/// As [`prepare`].
pub fn plan_of(
    desired: &DesiredGraph,
    live: &crate::model::live::LiveState,
    shape: &Shape<'_>,
    set: Option<&ManifestSet>,
) -> Result<Plan, Refused> {
    let mut plan = prepare(desired, live, shape, &has_supervisor)?;
    if plan.reshapes_workflow()
        && !shape.destroy
        && let Some(set) = set
    {
        plan.workflow_graph = Some(crate::render::graph::build(set).mermaid());
    }
    Ok(plan)
}

/// Reads live state, plans, shows and (when asked) applies.
///
/// # Errors
/// When the plan cannot be shown.
pub async fn reconcile_once<C: Cloud, U: Ui>(
    cloud: &C,
    request: &Request<'_>,
    ui: &U,
) -> std::io::Result<Reconciled> {
    let desired = request.desired;
    let live = match cloud.refresh(&desired.to_read(request.destroy)).await {
        Ok(l) => l,
        Err(e) => {
            ui.error(&format!("reading live state failed: {e}"));
            return Ok(Reconciled::Refused(Refusal::ReadFailed));
        }
    };
    let shape = Shape {
        destroy: request.destroy,
        allow_empty: request.allow_empty,
        replace: request.replace,
        targets: request.targets,
        refresh_only: request.refresh_only,
    };
    let plan = match plan_of(desired, &live, &shape, request.set) {
        Ok(p) => p,
        Err(Refused::Empty(e)) => {
            ui.error(&e);
            return Ok(Reconciled::Refused(Refusal::Empty));
        }
        Err(Refused::BadAddress(e)) => {
            ui.error(&e);
            return Ok(Reconciled::Refused(Refusal::BadAddress));
        }
    };
    if !request.targets.is_empty() {
        ui.warn("the plan is partial (--target): changes to other resources are left out; run a full plan afterwards");
    }
    let changed = plan.has_changes() || !plan.errors.is_empty();
    if request.show == Show::Always || changed {
        ui.show(&plan)?;
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
    if !apply.auto_approve && !ui.confirm(&plan) {
        return Ok(Reconciled::Refused(Refusal::NotConfirmed));
    }
    if let Some(announce) = apply.announce {
        announce(&plan);
    }
    Ok(
        match execute(cloud, &plan, apply.parallelism, apply.stop, ui).await {
            Some(report) => Reconciled::Applied { plan, report },
            None => Reconciled::Refused(Refusal::ReadFailed),
        },
    )
}

/// Carries out `plan`'s steps, starting no new step once `stop()` says so; `None` when the
/// account cannot be told (reported).
pub async fn execute<C: Cloud, U: Ui>(
    cloud: &C,
    plan: &Plan,
    parallelism: usize,
    stop: &(dyn Fn() -> bool + Sync),
    ui: &U,
) -> Option<Report> {
    let account = match cloud.account_id().await {
        Ok(a) => a,
        Err(e) => {
            ui.error(&format!("cannot tell the account: {e}"));
            return None;
        }
    };
    let session = cloud.session(account, &plan.stack);
    Some(crate::apply::run_until(&session, plan, parallelism, ui.progress(), stop).await)
}

/// A saved plan to apply, and what it is judged against.
#[derive(Clone, Copy)]
pub struct Saved<'a> {
    /// The plan file, as read.
    pub file: &'a crate::plan::file::PlanFile,
    /// Its name in messages.
    pub shown: &'a str,
    /// The desired graph of the manifests it names, loaded again.
    pub desired: &'a DesiredGraph,
    /// Those manifests, to draw the workflow as the saved plan did.
    pub set: Option<&'a ManifestSet>,
    /// Steps at once.
    pub parallelism: usize,
    /// True once no new step may start (a lost lock).
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

/// Applies a saved plan, after proving it is exactly the plan the manifests and AWS give
/// now: the saved plan is judged ([`verify::saved`]) as each thing is learnt (`desired`, the
/// manifests it names, loaded again; live state; the plan they give now, shaped as the saved
/// one was), and what runs is the fresh plan. A plan file is not signed, so nothing in it runs
/// as it is.
///
/// # Errors
/// Never, today: the same signature as [`reconcile_once`].
pub async fn apply_saved<C: Cloud, U: Ui>(
    cloud: &C,
    request: &Saved<'_>,
    ui: &U,
) -> std::io::Result<Reconciled> {
    let Saved {
        file,
        shown,
        desired,
        set,
        parallelism,
        stop,
    } = *request;
    let saved = &file.plan;
    let refuse = |verdict: Verdict| match verdict {
        Verdict::Go => None,
        Verdict::NothingToDo => Some(Reconciled::NoChanges(saved.clone())),
        Verdict::Refuse { what, reasons } => {
            refused(ui, &what, &reasons);
            Some(Reconciled::Refused(Refusal::Stale))
        }
    };
    let mut now = verify::Now {
        desired: Some(desired),
        ..verify::Now::default()
    };
    if let Some(end) = refuse(verify::saved(file, shown, &now)) {
        return Ok(end);
    }
    let live = match cloud.refresh(&desired.to_read(saved.destroy)).await {
        Ok(l) => l,
        Err(e) => {
            ui.error(&format!("reading live state failed: {e}"));
            return Ok(Reconciled::Refused(Refusal::ReadFailed));
        }
    };
    now.live = Some(&live);
    if let Some(end) = refuse(verify::saved(file, shown, &now)) {
        return Ok(end);
    }
    // Shaped as the saved plan says it was (its steps must be the fresh plan's whatever its
    // `replace` and `targets` claim); never refused for emptying the stack, which the plan
    // that was saved was allowed to.
    let shape = Shape {
        destroy: saved.destroy,
        allow_empty: true,
        replace: &saved.replace,
        targets: &saved.targets,
        refresh_only: false,
    };
    let fresh = match plan_of(desired, &live, &shape, set) {
        Ok(p) => p,
        Err(Refused::Empty(e) | Refused::BadAddress(e)) => {
            ui.error(&format!("{e}; nothing was written"));
            return Ok(Reconciled::Refused(Refusal::BadAddress));
        }
    };
    now.fresh = Some(&fresh);
    if let Some(end) = refuse(verify::saved(file, shown, &now)) {
        return Ok(end);
    }
    Ok(match execute(cloud, &fresh, parallelism, stop, ui).await {
        Some(report) => Reconciled::Applied {
            plan: fresh,
            report,
        },
        None => Reconciled::Refused(Refusal::ReadFailed),
    })
}

/// Reports a refused saved plan: each difference, then the sentence (see [`verify::saved`]).
pub fn refused<U: Ui + ?Sized>(ui: &U, what: &str, reasons: &[String]) {
    for r in reasons {
        ui.line(&format!("  - {r}"));
    }
    if reasons.is_empty() {
        ui.error(what);
    } else {
        ui.error(&format!(
            "{what} ({} differences above); nothing was written. Run `scar plan` again.",
            reasons.len()
        ));
    }
}
