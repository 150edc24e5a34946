//! `scar watch DIR`: apply on every change of the manifest directory and every interval.
//!
//! Each run validates (invalid manifests change nothing, and watching goes on), takes the
//! stack's lock, plans, refuses deletes above `--max-deletes` (and deleting every function
//! unless `--allow-empty`), applies, and releases the lock. SIGINT and SIGTERM let the step
//! in flight finish, release the lock and exit 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::cmd_apply::print_outputs;
use super::exit::{Done, Outcome};
use super::output::Output;
use super::reconcile::{Apply, Reconciled, Refusal, Request, Show, reconcile_once};
use super::{AwsArgs, session};
use crate::aws::AwsCloud;
use crate::lock::Operation;
use crate::watch::{Event, Ran, Reason, Runner, Timing, watch};

/// The arguments of `scar watch`.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// Time between drift-healing runs (such as 30s, 5m, 1h); 0 turns them off.
    #[arg(long, default_value = "5m", value_parser = crate::watch::parse_duration)]
    pub interval: std::time::Duration,
    /// Quiet time after the last file change before a run starts.
    #[arg(long, default_value = "300ms", value_parser = crate::watch::parse_duration)]
    pub debounce: std::time::Duration,
    /// Plan on every run but never apply.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow a run that deletes every function of the stack.
    #[arg(long)]
    pub allow_empty: bool,
    /// Refuse (and leave for a person) any plan that deletes more resources than this.
    #[arg(long, default_value_t = 10)]
    pub max_deletes: usize,
    /// Steps run at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

impl WatchArgs {
    /// The drift-healing interval; `None` when 0 turned it off.
    fn interval(&self) -> Option<Duration> {
        (!self.interval.is_zero()).then_some(self.interval)
    }
}

/// True for files whose change should start a run: not editor swap or backup files, not
/// anything under a hidden directory.
fn relevant(path: &Path, roots: &[PathBuf]) -> bool {
    let rel = roots
        .iter()
        .find_map(|r| path.strip_prefix(r).ok())
        .unwrap_or(path);
    let hidden = rel
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    !hidden
        && !name.ends_with('~')
        && !name.ends_with(".swp")
        && !name.ends_with(".swx")
        && name != "4913"
}

pub(super) fn run(args: &WatchArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let root = std::fs::canonicalize(&args.dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", args.dir.display())))?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let files = tx.clone();
        // An overlay's bases are followed too: an edit there changes this environment.
        let mut roots = crate::manifest::load_dir(&args.dir).0.roots;
        roots.retain(|r| r != &root);
        roots.insert(0, root.clone());
        let watched = roots.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(e) = res
                && !matches!(e.kind, notify::EventKind::Access(_))
                && e.paths.iter().any(|p| relevant(p, &watched))
            {
                // A full channel already means "something changed".
                let _ = files.try_send(Event::FileChanged);
            }
        })
        .map_err(std::io::Error::other)?;
        for r in &roots {
            watcher
                .watch(r, notify::RecursiveMode::Recursive)
                .map_err(std::io::Error::other)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        tokio::spawn(stop_on_signal(stop.clone(), tx));
        println!(
            "[watch] watching {} (debounce {:?}, interval {}){}",
            args.dir.display(),
            args.debounce,
            args.interval()
                .map_or_else(|| "off".to_owned(), |i| format!("{i:?}")),
            if args.dry_run { ", dry run" } else { "" }
        );
        let mut runner = WatchRunner {
            args,
            aws,
            out,
            dir: args.dir.to_path_buf(),
            stop,
            cloud: None,
            n: 0,
        };
        let timing = Timing {
            debounce: args.debounce,
            interval: args.interval(),
        };
        let runs = watch(&mut rx, timing, &mut runner).await;
        drop(watcher);
        println!("[watch] stopped after {runs} runs");
        tracing::info!(runs, "watch stopped");
        Ok(Done::Success)
    })
}

async fn stop_on_signal(stop: Arc<AtomicBool>, tx: mpsc::Sender<Event>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("[watch] stopping: the step in flight finishes, then the lock is released");
    tracing::info!("stop signal received");
    stop.store(true, Ordering::SeqCst);
    let _ = tx.send(Event::Stop).await;
}

struct WatchRunner<'a> {
    args: &'a WatchArgs,
    aws: &'a AwsArgs,
    out: &'a Output,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    /// Connected on the first valid run; again when the stack's region changes.
    cloud: Option<(String, Arc<AwsCloud>)>,
    n: usize,
}

impl Runner for WatchRunner<'_> {
    async fn run(&mut self, reason: Reason) -> Ran {
        self.n += 1;
        let n = self.n;
        let started = Instant::now();
        println!("[watch] run {n} started: {}", reason.as_str());
        tracing::info!(run = n, reason = reason.as_str(), "run started");
        let (outcome, ran) = self.once(n).await;
        println!(
            "[watch] run {n} {outcome} ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        tracing::info!(
            run = n,
            outcome,
            failed = ran == Ran::Failed,
            secs = started.elapsed().as_secs_f64(),
            "run finished"
        );
        ran
    }
}

impl WatchRunner<'_> {
    /// One run: what happened (for the log line), and how it ended for scheduling.
    async fn once(&mut self, n: usize) -> (String, Ran) {
        let out = self.out;
        let Ok(desired) = session::load(&self.dir, out) else {
            return (
                "found invalid manifests: nothing changed, still watching".into(),
                Ran::Settled,
            );
        };
        let cloud = match &self.cloud {
            Some((region, c)) if *region == desired.region => c.clone(),
            _ => {
                let c = session::connect(self.aws, &desired).await;
                self.cloud = Some((desired.region.clone(), c.clone()));
                c
            }
        };
        let args = self.args;
        let stop = self.stop.clone();
        let desired = &desired;
        let cloud_ref = &cloud;
        let locked = session::locked(
            cloud_ref,
            &desired.stack,
            &self.dir,
            Operation::Watch,
            // A run that finds the lock held reports it; the next run tries again.
            std::time::Duration::ZERO,
            out,
            |lost| async move {
                let halt = || stop.load(Ordering::SeqCst) || lost.load(Ordering::SeqCst);
                let announce = |plan: &crate::plan::Plan| {
                    println!(
                        "[watch] run {n} applying {} changes",
                        plan.changes().count()
                    );
                };
                let request = Request {
                    desired,
                    set: None,
                    destroy: false,
                    allow_empty: args.allow_empty,
                    show: Show::WhenChanged,
                    apply: Some(Apply {
                        auto_approve: true,
                        parallelism: usize::from(args.parallelism),
                        max_deletes: Some(args.max_deletes),
                        dry_run: args.dry_run,
                        stop: &halt,
                        announce: Some(&announce),
                    }),
                    targets: &[],
                    replace: &[],
                    refresh_only: false,
                };
                reconcile_once(cloud_ref, &request, out).await
            },
        )
        .await;
        let reconciled = match locked {
            Ok(r) => r,
            // The lock held by another run (printed), or the plan could not be printed.
            Err(_) => {
                return (
                    "stopped early (see the error above): nothing changed".into(),
                    Ran::Failed,
                );
            }
        };
        let ran = if reconciled.should_retry() {
            Ran::Failed
        } else {
            Ran::Settled
        };
        (self.describe(&cloud, reconciled), ran)
    }

    /// The log line of a run that reached AWS.
    fn describe(&self, cloud: &AwsCloud, reconciled: Reconciled) -> String {
        match reconciled {
            Reconciled::Refused(
                Refusal::ReadFailed | Refusal::NotConfirmed | Refusal::BadAddress,
            ) => "stopped early (see the error above): nothing changed".into(),
            Reconciled::Refused(Refusal::Empty) => {
                "refused to delete every function: nothing changed".into()
            }
            Reconciled::Refused(Refusal::TooManyDeletes(deletes)) => {
                self.out.error(&format!(
                    "the plan deletes {deletes} resources, more than --max-deletes {}: watch mode does not apply it. Review it and run `scar apply {}` by hand, or raise --max-deletes",
                    self.args.max_deletes,
                    self.args.dir.display()
                ));
                format!("refused {deletes} deletes: nothing changed")
            }
            Reconciled::PlanErrors(_) => "found plan errors: nothing changed".into(),
            Reconciled::NoChanges(_) => "found no changes".into(),
            Reconciled::Planned(_) => "planned (dry run): nothing changed".into(),
            Reconciled::Applied { plan, report } => {
                let (added, changed, destroyed) = report.counts();
                if !report.ok() {
                    for (a, e) in &report.failed {
                        eprintln!("  failed:  {a}: {e}");
                    }
                    format!(
                        "failed after {added} added, {changed} changed, {destroyed} destroyed; the next run retries"
                    )
                } else if !report.skipped.is_empty() {
                    format!(
                        "stopped after {added} added, {changed} changed, {destroyed} destroyed; {} steps not started, the next run converges",
                        report.skipped.len()
                    )
                } else {
                    print_outputs(cloud, &plan);
                    format!("applied: {added} added, {changed} changed, {destroyed} destroyed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_droppings_and_hidden_files_start_no_run() {
        let root = &[PathBuf::from("/s")][..];
        assert!(relevant(Path::new("/s/split.yaml"), root));
        assert!(relevant(Path::new("/s/scripts/run.sh"), root));
        for p in [
            "/s/.split.yaml.swp",
            "/s/split.yaml~",
            "/s/4913",
            "/s/.git/index",
            "/s/x.swx",
        ] {
            assert!(!relevant(Path::new(p), root), "{p}");
        }
    }
}
