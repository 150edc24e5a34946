//! `scar watch DIR`: the controller (`crate::watch::controller`) run with the command line's
//! arguments, its manifests loaded and its plans shown as the other commands do.
//!
//! Each run validates (invalid manifests change nothing, and watching goes on), takes the
//! stack's lock, plans, refuses deletes above `--max-deletes` (and deleting every function
//! unless `--allow-empty`), applies, and releases the lock. SIGINT and SIGTERM let the step
//! in flight finish, release the lock and exit 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::exit::{Done, Failure, Outcome};
use super::output::{Output, Terminal};
use super::{AwsArgs, PlanFormat, session};
use crate::aws::AwsCloud;
use crate::model::DesiredGraph;
use crate::plan::Plan;
use crate::watch::controller::{self, Config, Host};
use crate::watch::git::GitSource;

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
    /// Serve `/healthz` (JSON) and `/metrics` (Prometheus text) on this address, such as
    /// 127.0.0.1:9090. Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Follow this Git remote instead of the folder: fetch it every --poll and apply the
    /// committed tree of --branch (DIR is then a path inside the repository). Uncommitted
    /// edits are never applied.
    #[arg(
        long,
        value_name = "URL",
        env = "SCAR_WATCH_GIT",
        hide_env_values = true
    )]
    pub git: Option<String>,
    /// The branch followed with --git.
    #[arg(long, default_value = "main", requires = "git")]
    pub branch: String,
    /// How often the Git remote is fetched.
    #[arg(long, default_value = "1m", value_parser = crate::watch::parse_poll, requires = "git")]
    pub poll: std::time::Duration,
    /// POST a JSON notification to this URL when a run fails and when a run sets back
    /// changes made outside scar. A webhook URL is a secret: prefer the variable, which no
    /// other user of the machine can read in the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "SCAR_WATCH_NOTIFY",
        hide_env_values = true,
        value_parser = crate::watch::webhook::parse_url
    )]
    pub notify: Option<String>,
    /// Pause while this file exists: runs are skipped (and counted as paused). SIGUSR1
    /// pauses and SIGUSR2 resumes as well.
    #[arg(long, value_name = "PATH")]
    pub pause_file: Option<PathBuf>,
}

impl WatchArgs {
    /// The drift-healing interval; `None` when 0 turned it off.
    fn interval(&self) -> Option<Duration> {
        (!self.interval.is_zero()).then_some(self.interval)
    }
}

pub(super) fn run(args: &WatchArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let source = match &args.git {
        Some(url) => {
            let cache = crate::cache::dir()
                .ok_or("no cache folder for the Git mirror: set SCAR_CACHE_DIR, XDG_CACHE_HOME or HOME")
                .map_err(|e| Failure::Message(e.into()))?;
            let s = GitSource::new(url, &args.branch, &cache)
                .map_err(|e| Failure::Message(e.to_string()))?;
            if args.dir.is_absolute() {
                return Err(Failure::Message(format!(
                    "with --git, DIR is a path inside the repository, such as manifests/wordcount; `{}` is absolute",
                    args.dir.display()
                )));
            }
            Some(s)
        }
        None => None,
    };
    let config = Config {
        dir: args.dir.clone(),
        interval: args.interval(),
        debounce: args.debounce,
        dry_run: args.dry_run,
        allow_empty: args.allow_empty,
        max_deletes: args.max_deletes,
        parallelism: usize::from(args.parallelism),
        listen: args.listen,
        source,
        poll: args.poll,
        notify: args.notify.clone(),
        pause_file: args.pause_file.clone(),
    };
    let host = CommandLine {
        aws,
        ui: Terminal {
            out,
            format: PlanFormat::Text,
        },
    };
    let rt = session::runtime()?;
    let runs = rt.block_on(controller::run(&config, &host))?;
    println!("[watch] stopped after {runs} runs");
    tracing::info!(runs, "watch stopped");
    Ok(Done::Success)
}

/// The command line as the controller's host.
struct CommandLine<'a> {
    aws: &'a AwsArgs,
    ui: Terminal<'a>,
}

impl<'a> Host for CommandLine<'a> {
    type Cloud = AwsCloud;
    type Ui = Terminal<'a>;

    fn load(&self, dir: &Path, commit: Option<(&Path, &str)>) -> Option<DesiredGraph> {
        match commit {
            Some((tree, c)) => session::load_from_commit(dir, tree, c, self.ui.out).ok(),
            None => session::load(dir, self.ui.out).ok(),
        }
    }

    fn roots(&self, dir: &Path) -> Vec<PathBuf> {
        session::validate(dir).0.roots
    }

    async fn connect(&self, region: &str) -> Arc<AwsCloud> {
        Arc::new(AwsCloud::connect(&self.aws.settings(), region).await)
    }

    fn ui(&self) -> &Terminal<'a> {
        &self.ui
    }

    fn outputs(&self, cloud: &AwsCloud, plan: &Plan) {
        super::cmd_apply::print_outputs(cloud, plan);
    }

    fn lease(&self) -> Duration {
        session::lease()
    }
}
