//! `scar watch` as a controller: a run on every change of the stack directory (or every new
//! commit of a followed Git branch) and every interval ([`super::watch`] schedules them), each
//! one reconcile step under the stack's lock; a monitoring endpoint, webhook notifications and
//! a pause switch. What it needs of the machine (loading manifests, connecting, showing) is a
//! [`Host`]; the command line is one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::mpsc;

use super::git::{Export, GitError, GitSource};
use super::metrics::{self, Metrics};
use super::{Event, Ran, Reason, Runner, Timing, serve, watch, webhook};
use crate::lock::Operation;
use crate::model::DesiredGraph;
use crate::plan::Plan;
use crate::reconcile::lock::{Locker, NotLocked};
use crate::reconcile::{Apply, Cloud, Reconciled, Refusal, Request, Show, Ui, reconcile_once};

/// What the controller needs of the machine it runs on.
pub trait Host: Sync {
    /// The cloud a run reconciles.
    type Cloud: Cloud + Send + Sync + 'static;
    /// Where runs show their plans and problems.
    type Ui: Ui;

    /// The desired graph of the stack directory `dir` (following Git: `dir` inside the export
    /// of `commit`, `(export, commit)`), its problems shown; `None` when it is invalid.
    fn load(&self, dir: &Path, commit: Option<(&Path, &str)>) -> Option<DesiredGraph>;

    /// The folders a change of which changes the stack in `dir` (an overlay's bases too).
    fn roots(&self, dir: &Path) -> Vec<PathBuf>;

    /// A cloud for `region`.
    fn connect(&self, region: &str) -> impl std::future::Future<Output = Arc<Self::Cloud>>;

    /// Where runs show their plans and problems.
    fn ui(&self) -> &Self::Ui;

    /// Shows what an applied plan's resources expose (HTTP endpoints' URLs).
    fn outputs(&self, cloud: &Self::Cloud, plan: &Plan);

    /// The lock's lease.
    fn lease(&self) -> Duration;
}

/// How to watch.
#[derive(Debug)]
pub struct Config {
    /// The stack directory (following Git: a path inside the repository).
    pub dir: PathBuf,
    /// Time between drift-healing runs; `None` for never.
    pub interval: Option<Duration>,
    /// Quiet time after the last file change before a run starts.
    pub debounce: Duration,
    /// Plan on every run but never apply.
    pub dry_run: bool,
    /// Allow a run that deletes every function of the stack.
    pub allow_empty: bool,
    /// Refuse (and leave for a person) any plan that deletes more resources than this.
    pub max_deletes: usize,
    /// Steps run at once.
    pub parallelism: usize,
    /// Serve `/healthz` and `/metrics` here.
    pub listen: Option<SocketAddr>,
    /// The Git remote followed instead of the folder.
    pub source: Option<GitSource>,
    /// How often the Git remote is fetched.
    pub poll: Duration,
    /// POST notifications here.
    pub notify: Option<String>,
    /// Pause while this file exists.
    pub pause_file: Option<PathBuf>,
}

/// Watches until SIGINT or SIGTERM; how many runs were made.
///
/// # Errors
/// When `--listen`'s address cannot be bound or the folder cannot be watched.
pub async fn run<H: Host>(config: &Config, host: &H) -> std::io::Result<usize>
where
    Arc<H::Cloud>: Locker,
{
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let _server = match config.listen {
        Some(addr) => {
            let (bound, task) = serve::start(addr, metrics.clone())
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("--listen {addr}: {e}")))?;
            println!("[watch] serving /healthz and /metrics on http://{bound}");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    // The folder's watcher, or the Git poller: either says "something changed".
    let (_watcher, _poller) = match &config.source {
        None => {
            let roots = host.roots(&config.dir);
            (Some(watch_files(&config.dir, roots, tx.clone())?), None)
        }
        Some(s) => {
            // Fetched once before the poller starts, so that it knows the commit the first
            // run applies (a failure here is the first run's to report).
            let _ = s.fetch().await;
            let poller = tokio::spawn(poll_git(
                s.clone(),
                config.poll,
                tx.clone(),
                metrics.clone(),
            ));
            (None, Some(AbortOnDrop(poller)))
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(false));
    tokio::spawn(stop_on_signal(stop.clone(), tx.clone()));
    tokio::spawn(pause_on_signal(paused.clone(), tx));
    let what = match &config.source {
        Some(s) => format!(
            "{} in {} (branch {}, fetched every {:?})",
            config.dir.display(),
            s.shown_url(),
            s.branch(),
            config.poll
        ),
        None => config.dir.display().to_string(),
    };
    println!(
        "[watch] watching {what} (debounce {:?}, interval {}){}",
        config.debounce,
        config
            .interval
            .map_or_else(|| "off".to_owned(), |i| format!("{i:?}")),
        if config.dry_run { ", dry run" } else { "" }
    );
    let mut controller = Controller {
        config,
        host,
        dir: config.dir.clone(),
        stop,
        paused,
        cloud: None,
        n: 0,
        metrics,
    };
    let timing = Timing {
        debounce: config.debounce,
        interval: config.interval,
    };
    Ok(watch(&mut rx, timing, &mut controller).await)
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

/// A task that ends when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the stack directory (and an overlay's bases) for changes.
fn watch_files(
    dir: &Path,
    mut roots: Vec<PathBuf>,
    tx: mpsc::Sender<Event>,
) -> std::io::Result<notify::RecommendedWatcher> {
    let root = std::fs::canonicalize(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    // An overlay's bases are followed too: an edit there changes this environment.
    roots.retain(|r| r != &root);
    roots.insert(0, root);
    let watched = roots.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res
            && !matches!(e.kind, notify::EventKind::Access(_))
            && e.paths.iter().any(|p| relevant(p, &watched))
        {
            // A full channel already means "something changed".
            let _ = tx.try_send(Event::FileChanged);
        }
    })
    .map_err(std::io::Error::other)?;
    for r in &roots {
        watcher
            .watch(r, notify::RecursiveMode::Recursive)
            .map_err(std::io::Error::other)?;
    }
    Ok(watcher)
}

/// Fetches the remote every `every`; a new commit on the branch is a change. The first fetch
/// is made before this starts; failures are logged, counted (and make the watcher unhealthy)
/// and tried again at the next poll.
async fn poll_git(
    source: GitSource,
    every: Duration,
    tx: mpsc::Sender<Event>,
    metrics: Arc<Mutex<Metrics>>,
) {
    let mut last = source.head().await.ok();
    loop {
        tokio::time::sleep(every).await;
        let fetched = source.fetch().await;
        if let Ok(mut m) = metrics.lock() {
            m.fetched(fetched.is_ok());
        }
        match fetched {
            Ok(commit) if last.as_deref() != Some(commit.as_str()) => {
                tracing::info!(commit, "the branch moved");
                last = Some(commit);
                let _ = tx.try_send(Event::FileChanged);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "fetching the Git remote failed"),
        }
    }
}

/// SIGUSR1 pauses, SIGUSR2 resumes (and starts a run).
async fn pause_on_signal(paused: Arc<AtomicBool>, tx: mpsc::Sender<Event>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut pause), Ok(mut resume)) = (
            signal(SignalKind::user_defined1()),
            signal(SignalKind::user_defined2()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = pause.recv() => {
                    paused.store(true, Ordering::SeqCst);
                    println!("[watch] paused (SIGUSR1): runs are skipped until SIGUSR2");
                }
                _ = resume.recv() => {
                    paused.store(false, Ordering::SeqCst);
                    println!("[watch] resumed (SIGUSR2)");
                    let _ = tx.try_send(Event::FileChanged);
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (paused, tx);
    }
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

struct Controller<'a, H: Host> {
    config: &'a Config,
    host: &'a H,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    /// Set by SIGUSR1, cleared by SIGUSR2.
    paused: Arc<AtomicBool>,
    /// Connected on the first valid run; again when the stack's region changes.
    cloud: Option<(String, Arc<H::Cloud>)>,
    n: usize,
    metrics: Arc<Mutex<Metrics>>,
}

/// How one run ended.
struct RunEnd {
    /// The log line's words.
    text: String,
    /// For scheduling.
    ran: Ran,
    /// For the metrics and notifications.
    outcome: metrics::Outcome,
    /// Resources changed outside scar that the run set back.
    drift: Vec<String>,
}

impl RunEnd {
    fn new(text: impl Into<String>, ran: Ran, outcome: metrics::Outcome) -> RunEnd {
        RunEnd {
            text: text.into(),
            ran,
            outcome,
            drift: Vec::new(),
        }
    }
}

impl<H: Host> Runner for Controller<'_, H>
where
    Arc<H::Cloud>: Locker,
{
    async fn run(&mut self, reason: Reason) -> Ran {
        self.n += 1;
        let n = self.n;
        let started = Instant::now();
        let paused = self.paused.load(Ordering::SeqCst)
            || self.config.pause_file.as_deref().is_some_and(Path::exists);
        if let Ok(mut m) = self.metrics.lock() {
            m.paused = paused;
        }
        let (end, commit) = if paused {
            let end = RunEnd::new(
                "skipped: paused (remove the pause file or send SIGUSR2 to resume)",
                Ran::Settled,
                metrics::Outcome::Paused,
            );
            (end, None)
        } else {
            println!("[watch] run {n} started: {}", reason.as_str());
            tracing::info!(run = n, reason = reason.as_str(), "run started");
            self.once(n).await
        };
        let secs = started.elapsed().as_secs_f64();
        let at = commit
            .as_deref()
            .map(|c| format!(" at commit {}", crate::watch::git::short(c)))
            .unwrap_or_default();
        println!("[watch] run {n} {}{at} ({secs:.1}s)", end.text);
        tracing::info!(
            run = n,
            outcome = end.text,
            result = end.outcome.label(),
            commit,
            failed = end.ran == Ran::Failed,
            secs,
            "run finished"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let stack = match self.metrics.lock() {
            Ok(mut m) => {
                m.record(end.outcome, secs, now, end.drift.len() as u64);
                if commit.is_some() && end.outcome.success() {
                    m.commit.clone_from(&commit);
                }
                m.stack.clone()
            }
            Err(_) => String::new(),
        };
        if let Some(url) = &self.config.notify {
            let mut events = Vec::new();
            if end.outcome.failing() {
                events.push(webhook::Kind::Failed);
            }
            if !end.drift.is_empty() {
                events.push(webhook::Kind::DriftCorrected);
            }
            for kind in events {
                let doc = webhook::document(
                    kind,
                    &stack,
                    n,
                    &end.text,
                    &end.drift,
                    commit.as_deref(),
                    now,
                );
                webhook::send(url, &doc).await;
            }
        }
        end.ran
    }
}

impl<H: Host> Controller<'_, H>
where
    Arc<H::Cloud>: Locker,
{
    /// Following Git: the commit the branch points at (as the poller last fetched it) and its
    /// files, exported (the mirror's lock held until it is dropped); the stack directory is
    /// then DIR inside them. `None` when watching a folder.
    async fn checkout(&mut self) -> Result<Option<(String, Export)>, GitError> {
        let Some(source) = &self.config.source else {
            return Ok(None);
        };
        // The poller keeps the mirror current; a mirror never fetched is fetched here.
        let commit = match source.head().await {
            Ok(c) => c,
            Err(_) => source.fetch().await?,
        };
        let export = source.tree(&commit).await?;
        if !export.left_out.is_empty() {
            self.host.ui().warn(&format!(
                "commit {}: links that lead outside the commit's files are left out: {}",
                crate::watch::git::short(&commit),
                export.left_out.join(", ")
            ));
        }
        self.dir = export.dir.join(&self.config.dir);
        Ok(Some((commit, export)))
    }

    /// One run: how it ended, and the commit it planned (following Git).
    async fn once(&mut self, n: usize) -> (RunEnd, Option<String>) {
        let host = self.host;
        let checkout = match self.checkout().await {
            Ok(c) => c,
            Err(e) => {
                host.ui()
                    .error(&format!("reading the Git remote failed: {e}"));
                let end = RunEnd::new(
                    "could not read the Git remote: nothing changed",
                    Ran::Failed,
                    metrics::Outcome::Failed,
                );
                return (end, None);
            }
        };
        // Everything the plan needs is read here (scripts included); the export is let go
        // (and its lock with it) right after.
        let (loaded, commit) = match checkout {
            Some((c, export)) => (host.load(&self.dir, Some((&export.dir, &c))), Some(c)),
            None => (host.load(&self.dir, None), None),
        };
        let Some(desired) = loaded else {
            let end = RunEnd::new(
                "found invalid manifests: nothing changed, still watching",
                Ran::Settled,
                metrics::Outcome::Invalid,
            );
            return (end, commit);
        };
        if let Ok(mut m) = self.metrics.lock() {
            m.stack.clone_from(&desired.stack);
        }
        let cloud = match &self.cloud {
            Some((region, c)) if *region == desired.region => c.clone(),
            _ => {
                let c = host.connect(&desired.region).await;
                self.cloud = Some((desired.region.clone(), c.clone()));
                c
            }
        };
        let config = self.config;
        let stop = self.stop.clone();
        let desired = &desired;
        let cloud_ref = &cloud;
        let shown = self.dir.display().to_string();
        let locked = crate::reconcile::lock::locked(
            cloud_ref,
            &desired.stack,
            &shown,
            Operation::Watch,
            host.lease(),
            // A run that finds the lock held reports it; the next run tries again.
            std::time::Duration::ZERO,
            host.ui(),
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
                    allow_empty: config.allow_empty,
                    show: Show::WhenChanged,
                    apply: Some(Apply {
                        auto_approve: true,
                        parallelism: config.parallelism,
                        max_deletes: Some(config.max_deletes),
                        dry_run: config.dry_run,
                        stop: &halt,
                        announce: Some(&announce),
                    }),
                    targets: &[],
                    replace: &[],
                    refresh_only: false,
                };
                reconcile_once(cloud_ref.as_ref(), &request, host.ui()).await
            },
        )
        .await;
        let reconciled = match locked {
            Ok(Ok(r)) => r,
            Err(NotLocked::Held) => {
                let end = RunEnd::new(
                    "found the lock held (see above): nothing changed, the next run tries again",
                    Ran::Failed,
                    metrics::Outcome::Locked,
                );
                return (end, commit);
            }
            // The lock could not be taken, or the plan could not be printed.
            Ok(Err(_)) | Err(NotLocked::Failed) => {
                let end = RunEnd::new(
                    "stopped early (see the error above): nothing changed",
                    Ran::Failed,
                    metrics::Outcome::Failed,
                );
                return (end, commit);
            }
        };
        let ran = if reconciled.should_retry() {
            Ran::Failed
        } else {
            Ran::Settled
        };
        let mut end = self.describe(&cloud, reconciled);
        end.ran = ran;
        (end, commit)
    }

    /// How a run that reached AWS ended.
    fn describe(&self, cloud: &H::Cloud, reconciled: Reconciled) -> RunEnd {
        use metrics::Outcome as O;
        let end = |text: String, outcome| RunEnd::new(text, Ran::Settled, outcome);
        match reconciled {
            Reconciled::Refused(
                Refusal::ReadFailed | Refusal::NotConfirmed | Refusal::BadAddress | Refusal::Stale,
            ) => end(
                "stopped early (see the error above): nothing changed".into(),
                O::Failed,
            ),
            Reconciled::Refused(Refusal::Empty) => end(
                "refused to delete every function: nothing changed".into(),
                O::Refused,
            ),
            Reconciled::Refused(Refusal::TooManyDeletes(deletes)) => {
                self.host.ui().error(&format!(
                    "the plan deletes {deletes} resources, more than --max-deletes {}: watch mode does not apply it. Review it and run `scar apply {}` by hand, or raise --max-deletes",
                    self.config.max_deletes,
                    self.config.dir.display()
                ));
                end(
                    format!("refused {deletes} deletes: nothing changed"),
                    O::Refused,
                )
            }
            Reconciled::PlanErrors(_) => {
                end("found plan errors: nothing changed".into(), O::Refused)
            }
            Reconciled::NoChanges(_) => end("found no changes".into(), O::NoChanges),
            Reconciled::Planned(_) => end("planned (dry run): nothing changed".into(), O::Planned),
            Reconciled::Applied { plan, report } => {
                let (added, changed, destroyed) = report.counts();
                if !report.ok() {
                    for (a, e) in &report.failed {
                        eprintln!("  failed:  {a}: {e}");
                    }
                    return end(
                        format!(
                            "failed after {added} added, {changed} changed, {destroyed} destroyed; the next run retries"
                        ),
                        O::Failed,
                    );
                }
                if !report.skipped.is_empty() {
                    return end(
                        format!(
                            "stopped after {added} added, {changed} changed, {destroyed} destroyed; {} steps not started, the next run converges",
                            report.skipped.len()
                        ),
                        O::Failed,
                    );
                }
                self.host.outputs(cloud, &plan);
                let mut e = end(
                    format!("applied: {added} added, {changed} changed, {destroyed} destroyed"),
                    O::Applied,
                );
                e.drift = plan
                    .changes()
                    .filter(|s| s.cause == crate::plan::Cause::Drift)
                    .filter(|s| report.done.iter().any(|(a, _)| a == &s.address))
                    .map(|s| s.address.to_string())
                    .collect();
                e
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
