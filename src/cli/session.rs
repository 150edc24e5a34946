//! What plan, apply, destroy and adopt share: validate before anything touches AWS, connect,
//! read live state, and build the plan.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::AwsArgs;
use super::exit::Failure;
use super::output::{Output, count};
use crate::aws::AwsCloud;
use crate::cloud::CloudError;
use crate::lock::Operation;
use crate::manifest::TrustRoot;
use crate::manifest::check::{validate_dir, validate_dir_in};
use crate::manifest::trust::Source;
use crate::model::DesiredGraph;

/// The trust root `--root` (or `SCAR_ROOT`) names, set once by `main`.
static ROOT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// Records the `--root` given (once, before any command runs).
pub(super) fn set_root(root: Option<std::path::PathBuf>) {
    let _ = ROOT.set(root);
}

/// Loads and checks `dir` within the trust root: `--root` when given, else the Git work tree
/// that holds `dir`, else `dir` itself.
pub(super) fn validate(
    dir: &Path,
) -> (crate::manifest::load::ManifestSet, crate::diag::Diagnostics) {
    match ROOT.get().and_then(Option::as_deref) {
        None => validate_dir(dir),
        Some(root) => match TrustRoot::at(root, Source::Explicit) {
            Ok(root) => validate_dir_in(dir, &root),
            Err(e) => {
                let mut diags = crate::diag::Diagnostics::default();
                diags.push(crate::diag::Diagnostic::error(e).hint("--root names a folder"));
                (crate::manifest::load::ManifestSet::default(), diags)
            }
        },
    }
}

/// Validates `dir` and builds its desired graph. Invalid manifests print their diagnostics and
/// end the command with exit 1 before any AWS call.
pub(super) fn load(dir: &Path, out: &Output) -> Result<DesiredGraph, Failure> {
    load_set(dir, out).map(|(_, d)| d)
}

/// [`load`], also returning the validated manifest set.
pub(super) fn load_set(
    dir: &Path,
    out: &Output,
) -> Result<(crate::manifest::load::ManifestSet, DesiredGraph), Failure> {
    load_set_shown(dir, out, None)
}

/// [`load`] of files exported from a Git commit under `tree`: problems are shown as
/// `COMMIT:PATH` (as `git show` names a file of a commit), not at the export's place.
pub(super) fn load_from_commit(
    dir: &Path,
    tree: &Path,
    commit: &str,
    out: &Output,
) -> Result<DesiredGraph, Failure> {
    load_set_shown(dir, out, Some((tree, commit))).map(|(_, d)| d)
}

fn load_set_shown(
    dir: &Path,
    out: &Output,
    commit: Option<(&Path, &str)>,
) -> Result<(crate::manifest::load::ManifestSet, DesiredGraph), Failure> {
    // Following Git, the commit's files are the trust root: nothing outside the export.
    let (set, diags) = match commit {
        Some((tree, c)) if !dir.is_dir() => {
            out.error(&format!(
                "{}:{} is not a folder of the commit (a link leading outside it is left out of the export)",
                crate::watch::git::short(c),
                dir.strip_prefix(tree).unwrap_or(dir).display()
            ));
            return Err(Failure::Reported);
        }
        Some((tree, _)) => match TrustRoot::at(tree, Source::Export) {
            Ok(root) => validate_dir_in(dir, &root),
            Err(e) => {
                out.error(&e);
                return Err(Failure::Reported);
            }
        },
        None => validate(dir),
    };
    let show = |diags: &crate::diag::Diagnostics| match commit {
        None => out.diagnostics(diags, &set),
        Some((tree, commit)) => {
            let (diags, set) = in_commit(diags, &set, tree, commit);
            out.diagnostics(&diags, &set);
        }
    };
    if diags.has_errors() {
        show(&diags);
        let shown = match commit {
            Some((tree, c)) => format!(
                "{}:{}",
                crate::watch::git::short(c),
                dir.strip_prefix(tree).unwrap_or(dir).display()
            ),
            None => dir.display().to_string(),
        };
        out.error(&format!(
            "{shown} is invalid ({}); nothing was read from or written to AWS",
            count(diags.error_count(), "error")
        ));
        return Err(Failure::Reported);
    }
    if diags.warning_count() > 0 {
        show(&diags);
    }
    match crate::model::build(&set) {
        Some(d) => Ok((set, d)),
        None => {
            out.error("no stack to plan");
            Err(Failure::Reported)
        }
    }
}

/// `diags` and the sources they quote with every path under `tree` named `COMMIT:PATH`.
fn in_commit(
    diags: &crate::diag::Diagnostics,
    set: &crate::manifest::load::ManifestSet,
    tree: &Path,
    commit: &str,
) -> (crate::diag::Diagnostics, crate::manifest::load::ManifestSet) {
    let short = crate::watch::git::short(commit);
    let name = |p: &Path| match p.strip_prefix(tree) {
        Ok(rest) => std::path::PathBuf::from(format!("{short}:{}", rest.display())),
        Err(_) => p.to_path_buf(),
    };
    let mut diags = diags.clone();
    for d in &mut diags.0 {
        if let Some(l) = &mut d.location {
            l.file = name(&l.file);
        }
        for (l, _) in &mut d.related {
            l.file = name(&l.file);
        }
    }
    let shown = crate::manifest::load::ManifestSet {
        files: set
            .files
            .iter()
            .map(|f| crate::manifest::load::SourceFile {
                path: name(&f.path),
                text: f.text.clone(),
            })
            .collect(),
        ..crate::manifest::load::ManifestSet::default()
    };
    (diags, shown)
}

/// A Tokio runtime for one command.
pub(super) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
}

/// Connects to AWS for `desired`'s region.
pub(super) async fn connect(aws: &AwsArgs, desired: &DesiredGraph) -> Arc<AwsCloud> {
    Arc::new(AwsCloud::connect(&aws.settings(), &desired.region).await)
}

/// The lock's lease: `SCAR_LOCK_LEASE` seconds, else [`crate::lock::DEFAULT_LEASE`].
pub(super) fn lease() -> Duration {
    std::env::var("SCAR_LOCK_LEASE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(crate::lock::DEFAULT_LEASE, Duration::from_secs)
}

/// How long to wait for a stack's lock someone else holds: `--lock-timeout` (Terraform's
/// flag), 0 by default (fail at once).
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// Wait this long for the stack's lock when another run holds it (such as 30s, 5m),
    /// trying again every few seconds, instead of failing at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::watch::parse_duration)]
    pub lock_timeout: Duration,
}

/// `--target ADDRESS`, repeatable: narrow a plan to resources and what they depend on.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Plan (and apply) only this resource and what it depends on, such as `function/split`;
    /// repeat for several. The plan says it is partial.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
}

impl TargetArgs {
    /// The addresses given.
    ///
    /// # Errors
    /// One that is not `KIND/NAME`.
    pub(super) fn addresses(&self) -> Result<Vec<crate::model::Address>, Failure> {
        parse_addresses("--target", &self.targets)
    }
}

/// `--replace ADDRESS`, repeatable: replace resources though nothing forces it.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplaceArgs {
    /// Replace this resource though nothing forces it (such as `function/split`: deleted and
    /// created again, its permissions after it); repeat for several. The plan shows it.
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub replace: Vec<String>,
}

impl ReplaceArgs {
    /// The addresses given.
    ///
    /// # Errors
    /// One that is not `KIND/NAME`.
    pub(super) fn addresses(&self) -> Result<Vec<crate::model::Address>, Failure> {
        parse_addresses("--replace", &self.replace)
    }
}

fn parse_addresses(flag: &str, given: &[String]) -> Result<Vec<crate::model::Address>, Failure> {
    given
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e: crate::model::BadAddress| Failure::Message(format!("{flag}: {e}")))
        })
        .collect()
}

/// Runs `body` holding the stack's lock for `operation` ([`crate::reconcile::lock::locked`]):
/// when someone else holds it past `wait`, says who and exits 1 having written nothing.
pub(super) async fn locked<T, F, Fut>(
    cloud: &Arc<AwsCloud>,
    stack: &str,
    dir: &Path,
    operation: Operation,
    wait: Duration,
    out: &Output,
    body: F,
) -> Result<T, Failure>
where
    F: FnOnce(Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let ui = super::output::Terminal {
        out,
        format: super::PlanFormat::Text,
    };
    let shown = dir.display().to_string();
    let ran =
        crate::reconcile::lock::locked(cloud, stack, &shown, operation, lease(), wait, &ui, body)
            .await;
    match ran {
        Ok(result) => result,
        Err(crate::reconcile::lock::NotLocked::Held) => Err(Failure::LockHeld),
        Err(crate::reconcile::lock::NotLocked::Failed) => Err(Failure::Reported),
    }
}

/// Reports a failed AWS read or write.
pub(super) fn cloud_failed(out: &Output, what: &str, e: &CloudError) -> Failure {
    out.error(&format!("{what}: {e}"));
    Failure::Reported
}
