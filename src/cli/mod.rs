//! The command line: argument parsing and dispatch. Each command owns its arguments (a clap
//! `Args` struct in its module) and returns an [`exit::Outcome`]; [`exit::code`] is the one
//! place that turns outcomes into exit codes (docs/cli.md).

mod cmd_adopt;
mod cmd_apply;
mod cmd_completions;
mod cmd_failures;
mod cmd_graph;
mod cmd_image;
mod cmd_import;
mod cmd_invoke;
mod cmd_local;
mod cmd_ops;
mod cmd_output;
mod cmd_pause;
mod cmd_plan;
mod cmd_policy;
mod cmd_retry;
mod cmd_schema;
mod cmd_show;
mod cmd_unlock;
mod cmd_validate;
mod cmd_watch;
mod exit;
pub mod output;
mod progress;

mod session;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use exit::Failure;
use output::Output;

/// scar: containers as serverless pipelines on AWS, declared in YAML and reconciled.
#[derive(Debug, Parser)]
#[command(name = "scar", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to colour output: auto (terminal and no NO_COLOR), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Log more (-v info, -vv debug, -vvv trace); logs go to stderr. SCAR_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format: text for people, json for log pipelines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The trust root: every manifest, overlay base and script a command reads must resolve
    /// inside it (default: the Git work tree that holds the stack directory, else the stack
    /// directory itself).
    #[arg(long, global = true, env = "SCAR_ROOT", value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    /// AWS connection settings.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr/stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output format of commands that report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// Machine-readable JSON on stdout.
    Json,
}

/// Output format of `scar graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid (GitHub and GitLab render it in Markdown).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// Which commands `scar policy` writes a policy for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFor {
    /// `plan` (reads only).
    Plan,
    /// `apply`, `destroy`, `watch` (reads and writes).
    Apply,
    /// `failures`, `retry`, `pause`, `resume` (reads, the failure records, invoking and
    /// holding the functions).
    Operate,
}

/// Output format of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Terraform-style text.
    Text,
    /// Terraform-shaped plan JSON.
    Json,
    /// A pull-request comment.
    Markdown,
}

/// How to reach AWS. The standard chain applies: environment, shared config and credentials,
/// SSO, instance roles.
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// Named profile from the shared AWS config.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Region; default: the Stack's.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Endpoint for every AWS service, such as a local emulator (also AWS_ENDPOINT_URL).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    fn settings(&self) -> crate::cloud::Settings {
        crate::cloud::Settings {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint_url.clone(),
        }
    }
}

/// `scar image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Assemble FUNCTION's image (its base image, the supervisor, its script and configuration)
    /// and push it to REGISTRY/REPO[:TAG] through the registry API; print its digest.
    ///
    /// No Docker daemon is needed. Only missing blobs are sent: building the same inputs again
    /// pushes nothing. A registry on loopback is spoken to in plain HTTP.
    Build(cmd_image::BuildArgs),
    /// Print FUNCTION's supervisor configuration: the `/opt/scar/function.json` its image
    /// gets (without the base image's own command, which assembly adds), for
    /// `scar-supervisor --event EVENT.json --config FILE` on this machine. No AWS call.
    Config(cmd_image::ConfigArgs),
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a stack directory: schema and cross-reference checks, no AWS call.
    ///
    /// Reports every problem at once with file:line:column, the field path and a hint.
    /// Exits 0 when valid (warnings allowed), 1 otherwise.
    Validate(cmd_validate::ValidateArgs),
    /// Compare the manifests with live AWS state and print the actions that would converge them.
    ///
    /// Validates first (invalid manifests: exit 1, no AWS call). Never writes to AWS.
    Plan(cmd_plan::PlanArgs),
    /// Print a saved plan.
    Show(cmd_show::ShowArgs),
    /// Make live AWS state match the manifests (or carry out a saved plan).
    ///
    /// With a directory: plans, shows the plan, asks for confirmation (or --auto-approve), then
    /// applies. With a plan file: refuses the plan if anything it read changed since, then
    /// applies exactly that plan.
    Apply(cmd_apply::ApplyArgs),
    /// Delete everything the stack owns (buckets and their objects are kept).
    Destroy(cmd_apply::DestroyArgs),
    /// Take an existing resource that no scar stack owns into this stack, after showing what
    /// the next apply would change on it.
    Adopt(cmd_adopt::AdoptArgs),
    /// Apply on every change of the manifest directory, and every --interval (drift self-heal).
    ///
    /// One save is one run (file events are debounced); changes during a run make one more
    /// run; one run at a time, each holding the stack's lock. Invalid manifests change nothing
    /// and watching goes on. SIGINT/SIGTERM: the step in flight finishes, the lock is released,
    /// exit 0.
    Watch(cmd_watch::WatchArgs),
    /// Call a function once: through its HTTP endpoint when it has one, else Lambda Invoke.
    ///
    /// Prints the answer (the HTTP body as is, or the supervisor's JSON). Exit 1 when the
    /// function failed.
    Invoke(cmd_invoke::InvokeArgs),
    /// Invoke the function once for every object already in its S3 input, a few at once, and
    /// summarise the successes and failures.
    Run(cmd_invoke::RunArgs),
    /// List the stack's functions with their live state: state, last update, memory, timeout,
    /// execution mode, image digest, supervisor version and HTTP URL.
    Ls(cmd_ops::LsArgs),
    /// Print what the stack's live resources expose: function and role ARNs, bucket names,
    /// HTTP endpoint URLs, image URIs with their digests, Batch ARNs. Reads AWS as `scar plan`
    /// does; writes nothing.
    Output(cmd_output::OutputArgs),
    /// Upload files and folders to a function's S3 input (relative paths kept): each file
    /// starts the function, as a drop into the bucket would.
    Put(cmd_ops::PutArgs),
    /// Download what a function wrote to its S3 output, relative paths kept.
    Get(cmd_ops::GetArgs),
    /// Print a function's logs (CloudWatch Logs), optionally only one request's, or follow them.
    Logs(cmd_ops::LogsArgs),
    /// List the inputs whose invocations Lambda gave up on (after its retries, or too old),
    /// with why, from where the functions' failure policies record them. Writes nothing.
    Failures(cmd_failures::FailuresArgs),
    /// Run the failed inputs `scar failures` lists again, with their original events: each
    /// record is deleted when its input succeeds and replaced when it fails again. Safe to
    /// run twice.
    Retry(cmd_retry::RetryArgs),
    /// Hold a function without losing its inputs: Lambda runs none of its events (reserved
    /// concurrency 0); those S3 sends wait, or go to its failure records. Plans keep it
    /// paused.
    Pause(cmd_pause::PauseArgs),
    /// Run a paused function again: its concurrency back, then the inputs held meanwhile
    /// retried from its failure records.
    Resume(cmd_pause::ResumeArgs),
    /// Draw the stack's workflow: functions, the S3 locations that trigger them and that they
    /// write to, HTTP entry points and Batch delegation. No AWS call.
    Graph(cmd_graph::GraphArgs),
    /// Container images: assemble a function's image without a Docker daemon.
    Image {
        /// What to do.
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Print the IAM policy that running scar on this stack needs, scoped to its names.
    ///
    /// `--for plan` gives the read-only policy a pull request's plan job needs; `--for apply`
    /// (the default) what apply, destroy and watch need. The account is `--account`, else the
    /// stack's `spec.accountId`, else the credentials' own (one STS call).
    Policy(cmd_policy::PolicyArgs),
    /// Break the stack's lock, held by a run that is gone (its id is in the conflict message).
    ///
    /// `apply`, `destroy`, `adopt` and `watch` hold the lock while they write; a crashed
    /// holder's lease runs out by itself (2 minutes), after which the next writer takes it.
    Unlock(cmd_unlock::UnlockArgs),
    /// Convert a SCAR 4.x function definition file (FDL) into a stack directory.
    ///
    /// Scripts are copied next to the manifests, credentials become secret references, and
    /// every SCAR field that has no home in scar is reported. The result is validated.
    Import(cmd_import::ImportArgs),
    /// Print the JSON Schema of the manifests, or write every schema file into a directory.
    Schema(cmd_schema::SchemaArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd_completions::CompletionsArgs),
    /// scar's own sandbox launcher, which `--local` runs start when bubblewrap is not
    /// installed (see `crate::local::launcher`); not for people.
    #[command(name = "__sandbox", hide = true)]
    Sandbox(SandboxArgs),
}

/// The launcher's step.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Step 2: the sandbox's first process.
    #[arg(long, conflicts_with = "probe")]
    init: bool,
    /// Make the namespaces and end.
    #[arg(long)]
    probe: bool,
}

/// Which schema `scar schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Any manifest, dispatching on `kind` (for editors).
    Manifest,
    /// Stack manifests.
    Stack,
    /// Function manifests.
    Function,
    /// Workflow manifests.
    Workflow,
    /// Overlay manifests (`overlay.yaml`).
    Overlay,
}

/// Parses arguments, runs the command and returns the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::code(Err(Failure::Usage(e)), &Output::new(ColorChoice::Auto)),
    };
    // Before anything else: the launcher must stay one thread, and its output is the
    // function's.
    if let Command::Sandbox(a) = &cli.command {
        use crate::local::launcher::{Step, run};
        return run(match (a.init, a.probe) {
            (true, _) => Step::Init,
            (_, true) => Step::Probe,
            _ => Step::Outside,
        });
    }
    output::init_logging(cli.verbose, cli.log_format);
    let out = Output::new(cli.color);
    session::set_root(cli.root.clone());
    let aws = &cli.aws;
    let outcome = match &cli.command {
        Command::Validate(a) => cmd_validate::run(a, &out),
        Command::Import(a) => cmd_import::run(a, &out),
        Command::Schema(a) => cmd_schema::run(a),
        Command::Plan(a) => cmd_plan::run(a, aws, &out),
        Command::Show(a) => cmd_show::run(a, &out),
        Command::Apply(a) => cmd_apply::apply(a, aws, &out),
        Command::Destroy(a) => cmd_apply::destroy(a, aws, &out),
        Command::Adopt(a) => cmd_adopt::run(a, aws, &out),
        Command::Watch(a) => cmd_watch::run(a, aws, &out),
        Command::Invoke(a) if a.local => {
            cmd_invoke::request(a).and_then(|how| cmd_local::invoke(a, &how, aws, &out))
        }
        Command::Invoke(a) => cmd_invoke::invoke(a, aws, &out),
        Command::Run(a) if a.local => cmd_invoke::call_time(a.script.as_deref(), &a.args)
            .and_then(|call| cmd_local::run(a, &call, aws, &out)),
        Command::Run(a) => cmd_invoke::run(a, aws, &out),
        Command::Ls(a) => cmd_ops::ls(a, aws, &out),
        Command::Output(a) => cmd_output::run(a, aws, &out),
        Command::Put(a) => cmd_ops::put(a, aws, &out),
        Command::Get(a) => cmd_ops::get(a, aws, &out),
        Command::Logs(a) => cmd_ops::logs(a, aws, &out),
        Command::Failures(a) => cmd_failures::run(a, aws, &out),
        Command::Retry(a) => cmd_retry::run(a, aws, &out),
        Command::Pause(a) => cmd_pause::pause(a, aws, &out),
        Command::Resume(a) => cmd_pause::resume(a, aws, &out),
        Command::Graph(a) => cmd_graph::run(a, &out),
        Command::Image {
            command: ImageCommand::Build(a),
        } => cmd_image::build(a, aws, &out),
        Command::Image {
            command: ImageCommand::Config(a),
        } => cmd_image::config(a, &out),
        Command::Unlock(a) => cmd_unlock::run(a, aws, &out),
        Command::Policy(a) => cmd_policy::run(a, aws, &out),
        Command::Completions(a) => cmd_completions::run(a),
        Command::Sandbox(_) => Ok(exit::Done::Success),
    };
    exit::code(outcome, &out)
}
