//! The plan: a value computed from the desired graph and the live state, rendered many ways
//! and executed by apply. [`build`] is pure.
//!
//! A step's `reason` and `cause` explain the plan to people; apply must not branch on them
//! (Terraform's rule for `ActionReason`).

mod build;
pub mod file;
mod order;
pub mod prepare;
pub mod target;
pub mod verify;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use build::{APPLIED_TAG, REDACTED, applied_hash, build};

use crate::model::Address;

/// Version of the plan file and JSON format; a major change means older files are refused.
pub const FORMAT_VERSION: &str = "1.0";

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing to do.
    NoOp,
    /// Create the resource.
    Create,
    /// Change it in place.
    Update,
    /// Delete it and create it again (AWS cannot change a field in place).
    Replace,
    /// Delete it.
    Delete,
}

impl Action {
    /// Terraform's symbol.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }

    /// Terraform's JSON action list.
    #[must_use]
    pub fn json_actions(self) -> &'static [&'static str] {
        match self {
            Action::NoOp => &["no-op"],
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::Delete => &["delete"],
        }
    }
}

/// Why a step exists (display only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Replaced because these fields cannot change in place.
    ReplaceBecauseCannotUpdate,
    /// Replaced because `--replace` asked for it (Terraform's `replace_by_request`).
    ReplaceByRequest,
    /// A function's permission statement or invoke configuration, replaced because its
    /// function is: Lambda deletes them with it, so they are put again on the new one.
    ReplaceWithFunction,
    /// A Batch job definition changed: a new revision is registered, then the old one is
    /// deregistered (job definitions are immutable).
    NewRevision,
    /// Deleted because no manifest asks for it any more.
    DeleteBecauseNoManifest,
    /// Deleted because the whole stack is being destroyed.
    DeleteBecauseDestroy,
    /// A compute environment replaced by one of the other family (EC2 and Fargate cannot
    /// change into each other): deleted once its queue has moved.
    DeleteBecauseReplaced,
    /// An untagged resource that AWS made for one of the stack's own (a log group Lambda
    /// created on first invocation) is taken over.
    AdoptCreatedByAws,
    /// The stack's failures bucket found untagged: what an apply stopped between
    /// `CreateBucket` and `PutBucketTagging` leaves. Tagged, once S3 confirms at apply that
    /// the bucket is in this account (another account's is refused).
    AdoptUnfinishedCreate,
}

/// Whether a change comes from the manifests or from outside scar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The manifests changed (or the resource is new or gone).
    Manifest,
    /// The live resource changed outside scar since the last apply.
    Drift,
}

/// One field that changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Top-level attribute key.
    pub field: String,
    /// Live value (absent for a create).
    pub before: Option<Value>,
    /// Desired value; `None` when only known after apply.
    pub after: Option<Value>,
    /// True when this field forces the replacement.
    pub forces_replacement: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The resource.
    pub address: Address,
    /// What happens to it.
    pub action: Action,
    /// Why (display only).
    pub reason: Option<Reason>,
    /// Manifest edit or drift (display only).
    pub cause: Cause,
    /// The fields that change (empty for no-ops and deletes).
    pub changes: Vec<FieldChange>,
    /// Live attributes, when the resource exists.
    pub before: Option<Map<String, Value>>,
    /// Desired attributes, references still unresolved where the target does not exist yet.
    pub after: Option<Map<String, Value>>,
    /// Sensitive attribute paths, never shown.
    pub sensitive: Vec<String>,
    /// Steps that must finish first.
    pub depends_on: Vec<Address>,
    /// The live fingerprint read while planning; apply refuses the step if it moved.
    pub expected_fingerprint: Option<String>,
    /// The hash apply records in the `scar:applied` tag, for drift detection next time.
    #[serde(default)]
    pub applied: Option<String>,
    /// A delete that another delete in the plan performs by itself (a function's permission
    /// statements go with the function): shown, but no call is made for it.
    #[serde(default)]
    pub covered_by: Option<Address>,
    /// The step takes over a resource the stack did not make but owns by what made it (the
    /// log group Lambda created for one of the stack's functions): its owner is checked
    /// through that function.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopts: bool,
}

/// A problem that makes the plan impossible to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanError {
    /// The resource concerned.
    pub address: Address,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Resources created (replacements count here and in `destroy`).
    pub add: usize,
    /// Resources changed in place.
    pub change: usize,
    /// Resources deleted.
    pub destroy: usize,
}

/// A plan: ordered steps, notes and errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`FORMAT_VERSION`].
    pub format_version: String,
    /// The stack planned.
    pub stack: String,
    /// Its region.
    pub region: String,
    /// True for `scar destroy` plans.
    pub destroy: bool,
    /// Steps in execution order (no-ops included, so renderers can count unchanged resources).
    pub steps: Vec<Step>,
    /// Things worth saying that change nothing (a retained bucket, an external bucket used as is).
    pub notes: Vec<String>,
    /// Problems that forbid applying.
    pub errors: Vec<PlanError>,
    /// The stack's workflow as a Mermaid flowchart, when the plan changes its shape (display
    /// only: the Markdown comment embeds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_graph: Option<String>,
    /// The `--target` addresses the plan was narrowed to (none: the whole stack). A saved
    /// plan is re-derived narrowed the same way before apply compares it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Address>,
    /// The `--replace` addresses forced to be replaced. A saved plan is re-derived with the
    /// same replacements before apply compares it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<Address>,
}

impl Plan {
    /// A plan of `steps` for tests: stack `demo` in us-east-1, no notes or errors.
    #[cfg(test)]
    pub(crate) fn bare(steps: Vec<Step>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            stack: "demo".into(),
            region: "us-east-1".into(),
            destroy: false,
            steps,
            notes: Vec::new(),
            errors: Vec::new(),
            workflow_graph: None,
            targets: Vec::new(),
            replace: Vec::new(),
        }
    }
}

impl Step {
    /// A bare step for tests: no changes, no attributes, manifest cause.
    #[cfg(test)]
    pub(crate) fn bare(
        kind: crate::model::ResourceKind,
        name: &str,
        action: Action,
        depends_on: &[Address],
    ) -> Step {
        Step {
            address: Address::new(kind, name),
            action,
            reason: None,
            cause: Cause::Manifest,
            changes: Vec::new(),
            before: None,
            after: None,
            sensitive: Vec::new(),
            depends_on: depends_on.to_vec(),
            expected_fingerprint: None,
            applied: None,
            covered_by: None,
            adopts: false,
        }
    }

    /// The symbol shown for this step: Terraform's `+/-` (create, then destroy) for a new
    /// job definition revision, else the action's.
    #[must_use]
    pub fn symbol(&self) -> &'static str {
        if self.reason == Some(Reason::NewRevision) {
            "+/-"
        } else {
            self.action.symbol()
        }
    }
}

/// True when the live attributes `before` carry deletion protection (the tag
/// `deletionProtection: true` writes on a function).
#[must_use]
pub fn protected(before: Option<&Map<String, Value>>) -> bool {
    use crate::model::attrs::Attrs as _;
    before
        .and_then(|b| crate::model::attrs::id::Tagged::read(b).ok())
        .is_some_and(|t| {
            t.tags
                .get(crate::model::tags::DELETION_PROTECTION)
                .is_some_and(|v| v == "true")
        })
}

/// The plan error for a step that would `what` (delete, replace) a protected resource.
#[must_use]
pub fn protection_error(address: &Address, what: &str) -> PlanError {
    PlanError {
        address: address.clone(),
        message: format!("deletion protection is on: the plan would {what} it"),
        hint: Some(format!(
            "if that is meant, set `deletionProtection: false` in its manifest and apply first (the protection is recorded on the resource, tag {}), then {what} it",
            crate::model::tags::DELETION_PROTECTION
        )),
    }
}

impl Plan {
    /// Add/change/destroy counts.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for step in &self.steps {
            match step.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    /// True when any step does something.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action != Action::NoOp)
    }

    /// Steps that do something.
    pub fn changes(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.action != Action::NoOp)
    }

    /// True when the plan changes the workflow's shape: a function, trigger, HTTP endpoint or
    /// Batch resource comes or goes, or a trigger's rule changes.
    #[must_use]
    pub fn reshapes_workflow(&self) -> bool {
        use crate::model::ResourceKind as K;
        self.changes().any(|s| match s.address.kind {
            K::S3Trigger => true,
            K::EventSourceMapping => matches!(s.action, Action::Create | Action::Delete),
            K::Function
            | K::HttpApi
            | K::BatchComputeEnvironment
            | K::BatchJobQueue
            | K::BatchJobDefinition => matches!(s.action, Action::Create | Action::Delete),
            K::IamRole
            | K::Bucket
            | K::LogGroup
            | K::LambdaPermission
            | K::ImageRepository
            | K::FunctionImage
            | K::InvokeConfig
            | K::Queue => false,
        })
    }
}
