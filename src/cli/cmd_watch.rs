//! `scar watch DIR`: apply on every change of the manifest directory and every interval.
//!
//! Each run validates (invalid manifests change nothing, and watching goes on), takes the
//! stack's lock, plans, refuses deletes above `--max-deletes` (and deleting every function
//! unless `--allow-empty`), applies, and releases the lock. SIGINT and SIGTERM let the step
//! in flight finish, release the lock and exit 0.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::cmd_apply::{print_outputs, run_steps};
use super::cmd_plan::print;
use super::output::Output;
use super::{AwsArgs, PlanFormat, session};
use crate::cloud::aws::AwsCloud;
use crate::watch::{Event, Reason, Runner, Timing, watch};

pub(super) struct Args<'a> {
    pub dir: &'a Path,
    pub interval: Option<Duration>,
    pub debounce: Duration,
    pub dry_run: bool,
    pub allow_empty: bool,
    pub max_deletes: usize,
    pub parallelism: usize,
}

/// True for files whose change should start a run: not editor swap or backup files, not
/// anything under a hidden directory.
fn relevant(path: &Path, root: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
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

pub(super) fn run(args: &Args<'_>, aws: &AwsArgs, out: &Output) -> std::io::Result<ExitCode> {
    let root = std::fs::canonicalize(args.dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", args.dir.display())))?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel::<Event>(1024);
        let files = tx.clone();
        let watched = root.clone();
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
        watcher
            .watch(&root, notify::RecursiveMode::Recursive)
            .map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        tokio::spawn(stop_on_signal(stop.clone(), tx));
        println!(
            "[watch] watching {} (debounce {:?}, interval {}){}",
            args.dir.display(),
            args.debounce,
            args.interval
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
            interval: args.interval,
        };
        let runs = watch(&mut rx, timing, &mut runner).await;
        drop(watcher);
        println!("[watch] stopped after {runs} runs");
        tracing::info!(runs, "watch stopped");
        Ok(ExitCode::SUCCESS)
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
    args: &'a Args<'a>,
    aws: &'a AwsArgs,
    out: &'a Output,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    /// Connected on the first valid run; again when the stack's region changes.
    cloud: Option<(String, Arc<AwsCloud>)>,
    n: usize,
}

impl Runner for WatchRunner<'_> {
    async fn run(&mut self, reason: Reason) {
        self.n += 1;
        let n = self.n;
        let started = Instant::now();
        println!("[watch] run {n} started: {}", reason.as_str());
        tracing::info!(run = n, reason = reason.as_str(), "run started");
        let outcome = self.once(n).await;
        println!(
            "[watch] run {n} {outcome} ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        tracing::info!(
            run = n,
            outcome,
            secs = started.elapsed().as_secs_f64(),
            "run finished"
        );
    }
}

impl WatchRunner<'_> {
    /// One run; returns what happened, for the log line.
    async fn once(&mut self, n: usize) -> String {
        let out = self.out;
        let Ok(desired) = session::load(&self.dir, out) else {
            return "found invalid manifests: nothing changed, still watching".into();
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
        let mut what = String::from("stopped early (see the error above): nothing changed");
        let what_ref = &mut what;
        let desired = &desired;
        let cloud_ref = &cloud;
        let _ = session::locked(cloud_ref, &desired.stack, &self.dir, "watch", out, |lost| async move {
            let live = match cloud_ref.refresh(desired).await {
                Ok(l) => l,
                Err(e) => return Ok(session::cloud_failed(out, "reading live state failed", &e)),
            };
            if session::check_empty(desired, &live, args.allow_empty, out).is_err() {
                *what_ref = "refused to delete every function: nothing changed".into();
                return Ok(ExitCode::from(1));
            }
            let plan = session::build_plan(desired, &live, false);
            if !plan.errors.is_empty() {
                print(&plan, PlanFormat::Text, out)?;
                *what_ref = "found plan errors: nothing changed".into();
                return Ok(ExitCode::from(1));
            }
            if !plan.has_changes() {
                *what_ref = "found no changes".into();
                return Ok(ExitCode::SUCCESS);
            }
            print(&plan, PlanFormat::Text, out)?;
            let deletes = plan.summary().destroy;
            if deletes > args.max_deletes {
                out.error(&format!(
                    "the plan deletes {deletes} resources, more than --max-deletes {}: watch mode does not apply it. Review it and run `scar apply {}` by hand, or raise --max-deletes",
                    args.max_deletes,
                    args.dir.display()
                ));
                *what_ref = format!("refused {deletes} deletes: nothing changed");
                return Ok(ExitCode::from(1));
            }
            if args.dry_run {
                *what_ref = "planned (dry run): nothing changed".into();
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "[watch] run {n} applying {} changes",
                plan.changes().count()
            );
            let halt = || stop.load(Ordering::SeqCst) || lost.load(Ordering::SeqCst);
            let report = match run_steps(cloud_ref, &plan, args.parallelism, &halt, out).await {
                Ok(r) => r,
                Err(code) => return Ok(code),
            };
            let (added, changed, destroyed) = report.counts();
            *what_ref = if !report.ok() {
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
                print_outputs(cloud_ref, &plan);
                format!("applied: {added} added, {changed} changed, {destroyed} destroyed")
            };
            Ok(ExitCode::SUCCESS)
        })
        .await;
        what
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_droppings_and_hidden_files_start_no_run() {
        let root = Path::new("/s");
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
