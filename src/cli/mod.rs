//! The command line: argument parsing, dispatch, output settings and exit codes.
//!
//! Exit codes (documented in docs/cli.md): 0 success, 1 any error (invalid input, usage error,
//! failed command). `scar plan --detailed-exitcode` will add 2 for "changes present", which is
//! why usage errors are 1 and not clap's customary 2.

mod cmd_adopt;
mod cmd_apply;
mod cmd_completions;
mod cmd_graph;
mod cmd_image;
mod cmd_import;
mod cmd_invoke;
mod cmd_ops;
mod cmd_plan;
mod cmd_policy;
mod cmd_schema;
mod cmd_show;
mod cmd_unlock;
mod cmd_validate;
mod cmd_watch;
pub mod output;
mod progress;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
    Build {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
        /// Where to push, such as `123456789012.dkr.ecr.us-east-1.amazonaws.com/tools:v1`.
        #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
        to: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print FUNCTION's supervisor configuration: the `/opt/scar/function.json` its image
    /// gets (without the base image's own command, which assembly adds), for
    /// `scar-supervisor --event EVENT.json --config FILE` on this machine. No AWS call.
    Config {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
    },
}

/// A call-time script (read from `script`) and arguments.
fn call_time(
    script: Option<&std::path::Path>,
    args: Vec<String>,
) -> Result<cmd_invoke::CallTime, String> {
    let script = match script {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    Ok(cmd_invoke::CallTime { script, args })
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a stack directory: schema and cross-reference checks, no AWS call.
    ///
    /// Reports every problem at once with file:line:column, the field path and a hint.
    /// Exits 0 when valid (warnings allowed), 1 otherwise.
    Validate {
        /// The stack directory (every *.yaml and *.yml below it is read).
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare the manifests with live AWS state and print the actions that would converge them.
    ///
    /// Validates first (invalid manifests: exit 1, no AWS call). Never writes to AWS.
    Plan {
        /// The stack directory.
        dir: PathBuf,
        /// Save the plan to this file, for `scar apply FILE` and `scar show FILE`.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 for no changes, 2 for changes, 1 for errors (Terraform's meaning).
        #[arg(long)]
        detailed_exitcode: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Plan the deletion of everything the stack owns (buckets kept).
        #[arg(long)]
        destroy: bool,
        /// Allow a plan that deletes every function of the stack (a Stack with no Functions).
        #[arg(long)]
        allow_empty: bool,
    },
    /// Print a saved plan.
    Show {
        /// A plan file written by `scar plan -o`.
        plan: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Make live AWS state match the manifests (or carry out a saved plan).
    ///
    /// With a directory: plans, shows the plan, asks for confirmation (or --auto-approve), then
    /// applies. With a plan file: refuses the plan if anything it read changed since, then
    /// applies exactly that plan.
    Apply {
        /// A stack directory or a plan file.
        target: PathBuf,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// Steps run at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
        /// Allow deleting every function of the stack (a Stack with no Functions).
        #[arg(long)]
        allow_empty: bool,
    },
    /// Delete everything the stack owns (buckets and their objects are kept).
    Destroy {
        /// The stack directory.
        dir: PathBuf,
        /// Destroy without asking.
        #[arg(long)]
        auto_approve: bool,
        /// Steps run at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
    },
    /// Take an existing resource that no scar stack owns into this stack, after showing what
    /// the next apply would change on it.
    Adopt {
        /// The stack directory.
        dir: PathBuf,
        /// The resource, such as `function/thumbs` (function, log_group, bucket or iam_role).
        address: String,
        /// Adopt without asking.
        #[arg(long)]
        auto_approve: bool,
    },
    /// Apply on every change of the manifest directory, and every --interval (drift self-heal).
    ///
    /// One save is one run (file events are debounced); changes during a run make one more
    /// run; one run at a time, each holding the stack's lock. Invalid manifests change nothing
    /// and watching goes on. SIGINT/SIGTERM: the step in flight finishes, the lock is released,
    /// exit 0.
    Watch {
        /// The stack directory.
        dir: PathBuf,
        /// Time between drift-healing runs (such as 30s, 5m, 1h); 0 turns them off.
        #[arg(long, default_value = "5m", value_parser = crate::watch::parse_duration)]
        interval: std::time::Duration,
        /// Quiet time after the last file change before a run starts.
        #[arg(long, default_value = "300ms", value_parser = crate::watch::parse_duration)]
        debounce: std::time::Duration,
        /// Plan on every run but never apply.
        #[arg(long)]
        dry_run: bool,
        /// Allow a run that deletes every function of the stack.
        #[arg(long)]
        allow_empty: bool,
        /// Refuse (and leave for a person) any plan that deletes more resources than this.
        #[arg(long, default_value_t = 10)]
        max_deletes: usize,
        /// Steps run at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
    },
    /// Call a function once: through its HTTP endpoint when it has one, else Lambda Invoke.
    ///
    /// Prints the answer (the HTTP body as is, or the supervisor's JSON). Exit 1 when the
    /// function failed.
    Invoke {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
        /// A file to send as the input.
        #[arg(long, conflicts_with = "json")]
        data: Option<PathBuf>,
        /// An event to send as it is (JSON), such as '{"input": {"bucket": "b", "key": "k"}}'.
        #[arg(long)]
        json: Option<String>,
        /// Do not wait for the result (Lambda's Event invocation; `X-Amz-Invocation-Type: Event`
        /// over HTTP).
        #[arg(long = "async")]
        asynchronous: bool,
        /// Run this script instead of the function's (SCAR's `run -s`); the call then goes
        /// to Lambda directly, not through an HTTP endpoint.
        #[arg(long, value_name = "FILE")]
        script: Option<PathBuf>,
        /// Send the HTTP request to this URL instead of the function's endpoint (a custom
        /// domain, a local emulator).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Write the answer's body (the bytes, for an HTTP function) to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Arguments for the script, or in place of the image's `Cmd` when the function has no
        /// script (after `--`); the call then goes to Lambda directly.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Invoke the function once for every object already in its S3 input, a few at once, and
    /// summarise the successes and failures.
    Run {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
        /// Which of the function's inputs (0 is the first).
        #[arg(long, default_value_t = 0)]
        input: usize,
        /// Invocations at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Print JSON instead of a summary.
        #[arg(long = "json")]
        as_json: bool,
        /// Run this script instead of the function's, for every object (SCAR's `run -s`).
        #[arg(long, value_name = "FILE")]
        script: Option<PathBuf>,
        /// Arguments for the script, or in place of the image's `Cmd` (after `--`).
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// List the stack's functions with their live state: state, last update, memory, timeout,
    /// execution mode, image digest, supervisor version and HTTP URL.
    Ls {
        /// The stack directory.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Upload files and folders to a function's S3 input (relative paths kept): each file
    /// starts the function, as a drop into the bucket would.
    Put {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
        /// Files or folders to upload.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Which of the function's inputs (0 is the first).
        #[arg(long, default_value_t = 0)]
        input: usize,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Download what a function wrote to its S3 output, relative paths kept.
    Get {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
        /// Which of the function's outputs (0 is the first).
        #[arg(long, default_value_t = 0)]
        output: usize,
        /// The folder to download into.
        #[arg(long, default_value = ".")]
        to: PathBuf,
        /// Replace files that already exist there (else they are skipped).
        #[arg(long)]
        overwrite: bool,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Print a function's logs (CloudWatch Logs), optionally only one request's, or follow them.
    Logs {
        /// The stack directory.
        dir: PathBuf,
        /// The function.
        function: String,
        /// Only lines that mention this request id.
        #[arg(long)]
        request_id: Option<String>,
        /// How far back to start (such as 30m, 2h).
        #[arg(long, default_value = "1h", value_parser = crate::watch::parse_duration)]
        since: std::time::Duration,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Draw the stack's workflow: functions, the S3 locations that trigger them and that they
    /// write to, HTTP entry points and Batch delegation. No AWS call.
    Graph {
        /// The stack directory.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
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
    Policy {
        /// The stack directory.
        dir: PathBuf,
        /// Which commands the policy is for.
        #[arg(long = "for", value_enum, default_value_t = PolicyFor::Apply)]
        operation: PolicyFor,
        /// The account id to put in ARNs.
        #[arg(long)]
        account: Option<String>,
    },
    /// Break the stack's lock, held by a run that is gone (its id is in the conflict message).
    ///
    /// `apply`, `destroy`, `adopt` and `watch` hold the lock while they write; a crashed
    /// holder's lease runs out by itself (2 minutes), after which the next writer takes it.
    Unlock {
        /// The stack directory.
        dir: PathBuf,
        /// The lock id shown by the run that found the stack locked.
        lock_id: String,
    },
    /// Convert a SCAR 4.x function definition file (FDL) into a stack directory.
    ///
    /// Scripts are copied next to the manifests, credentials become secret references, and
    /// every SCAR field that has no home in scar is reported. The result is validated.
    Import {
        /// The SCAR function definition file (YAML).
        fdl: PathBuf,
        /// The directory to write the stack into (must be empty or absent).
        #[arg(short, long)]
        output: PathBuf,
        /// The stack name (default: derived from the file name).
        #[arg(long)]
        stack: Option<String>,
        /// The stack's region, when the FDL gives none (default us-east-1).
        #[arg(long)]
        region: Option<String>,
        /// Write into a non-empty output directory, replacing files of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of the manifests, or write every schema file into a directory.
    Schema {
        /// Which schema: manifest (any kind), stack, function or workflow.
        #[arg(value_enum, default_value_t = SchemaKind::Manifest)]
        kind: SchemaKind,
        /// Write all schema files (stack.json, function.json, workflow.json, manifest.json)
        /// into this directory instead of printing one.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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
}

/// Parses arguments, runs the command and returns the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    output::init_logging(cli.verbose, cli.log_format);
    let out = output::Output::new(cli.color);
    let result = match cli.command {
        Command::Validate { dir, format } => cmd_validate::run(&dir, format, &out),
        Command::Import {
            fdl,
            output,
            stack,
            region,
            force,
        } => cmd_import::run(&fdl, &output, stack, region, force, &out),
        Command::Schema { kind, write } => cmd_schema::run(kind, write.as_deref()),
        Command::Plan {
            dir,
            out: file,
            detailed_exitcode,
            format,
            destroy,
            allow_empty,
        } => cmd_plan::run(
            &cmd_plan::Args {
                dir: &dir,
                out: file.as_deref(),
                detailed_exitcode,
                format,
                destroy,
                allow_empty,
            },
            &cli.aws,
            &out,
        ),
        Command::Show { plan, format } => cmd_show::run(&plan, format, &out),
        Command::Apply {
            target,
            auto_approve,
            parallelism,
            allow_empty,
        } => cmd_apply::run(
            &cmd_apply::Args {
                target: &target,
                auto_approve,
                parallelism: usize::from(parallelism),
                allow_empty,
                destroy: false,
            },
            &cli.aws,
            &out,
        ),
        Command::Destroy {
            dir,
            auto_approve,
            parallelism,
        } => cmd_apply::run(
            &cmd_apply::Args {
                target: &dir,
                auto_approve,
                parallelism: usize::from(parallelism),
                allow_empty: true,
                destroy: true,
            },
            &cli.aws,
            &out,
        ),
        Command::Adopt {
            dir,
            address,
            auto_approve,
        } => cmd_adopt::run(&dir, &address, auto_approve, &cli.aws, &out),
        Command::Watch {
            dir,
            interval,
            debounce,
            dry_run,
            allow_empty,
            max_deletes,
            parallelism,
        } => cmd_watch::run(
            &cmd_watch::Args {
                dir: &dir,
                interval: (!interval.is_zero()).then_some(interval),
                debounce,
                dry_run,
                allow_empty,
                max_deletes,
                parallelism: usize::from(parallelism),
            },
            &cli.aws,
            &out,
        ),
        Command::Invoke {
            dir,
            function,
            data,
            json,
            asynchronous,
            script,
            url,
            output,
            args,
        } => {
            let payload = match (data, json) {
                (Some(p), _) => match std::fs::read(&p) {
                    Ok(b) => cmd_invoke::Payload::Data(b),
                    Err(e) => {
                        out.error(&format!("{}: {e}", p.display()));
                        return ExitCode::from(1);
                    }
                },
                (None, Some(j)) => match serde_json::from_str(&j) {
                    Ok(v) => cmd_invoke::Payload::Json(v),
                    Err(e) => {
                        out.error(&format!("--json is not JSON: {e}"));
                        return ExitCode::from(1);
                    }
                },
                (None, None) => cmd_invoke::Payload::Empty,
            };
            let call = match call_time(script.as_deref(), args) {
                Ok(c) => c,
                Err(e) => {
                    out.error(&e);
                    return ExitCode::from(1);
                }
            };
            let how = cmd_invoke::Invoke {
                payload,
                call,
                asynchronous,
                url,
                output,
            };
            cmd_invoke::invoke(&dir, &function, &how, &cli.aws, &out)
        }
        Command::Run {
            dir,
            function,
            input,
            concurrency,
            as_json,
            script,
            args,
        } => match call_time(script.as_deref(), args) {
            Ok(call) => cmd_invoke::run(
                &dir,
                &function,
                input,
                concurrency,
                as_json,
                &call,
                &cli.aws,
                &out,
            ),
            Err(e) => {
                out.error(&e);
                return ExitCode::from(1);
            }
        },
        Command::Ls { dir, json } => cmd_ops::ls(&dir, json, &cli.aws, &out),
        Command::Put {
            dir,
            function,
            paths,
            input,
            json,
        } => cmd_ops::put(&dir, &function, &paths, input, json, &cli.aws, &out),
        Command::Get {
            dir,
            function,
            output,
            to,
            overwrite,
            json,
        } => cmd_ops::get(
            &dir, &function, output, &to, overwrite, json, &cli.aws, &out,
        ),
        Command::Logs {
            dir,
            function,
            request_id,
            since,
            follow,
            json,
        } => cmd_ops::logs(
            &dir,
            &function,
            request_id.as_deref(),
            since,
            follow,
            json,
            &cli.aws,
            &out,
        ),
        Command::Graph { dir, format } => cmd_graph::run(&dir, format, &out),
        Command::Image {
            command:
                ImageCommand::Build {
                    dir,
                    function,
                    to,
                    json,
                },
        } => cmd_image::run(&dir, &function, &to, json, &cli.aws, &out),
        Command::Image {
            command: ImageCommand::Config { dir, function },
        } => cmd_image::config(&dir, &function, &out),
        Command::Unlock { dir, lock_id } => cmd_unlock::run(&dir, &lock_id, &cli.aws, &out),
        Command::Policy {
            dir,
            operation,
            account,
        } => cmd_policy::run(
            &dir,
            match operation {
                PolicyFor::Plan => crate::model::policy::Operation::Plan,
                PolicyFor::Apply => crate::model::policy::Operation::Apply,
            },
            account.as_deref(),
            &cli.aws,
            &out,
        ),
        Command::Completions { shell } => cmd_completions::run(shell),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            out.error(&e.to_string());
            ExitCode::from(1)
        }
    }
}
