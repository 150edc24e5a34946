//! The contract between scar (which writes a function's configuration into its image or its
//! environment) and scar-supervisor (which reads it inside Lambda and Batch): the
//! configuration's types and every `SCAR_*` name. Both sides depend on this crate, so the two
//! cannot drift; it holds no I/O beyond reading the environment it is handed.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod records;

/// The version of scar and of the supervisor it assembles into images: the workspace's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Marks the supervisor binary with its version, so scar can tell which supervisor a file is
/// without running it (it may be built for another architecture): `\0scar-supervisor <VERSION>\0`.
pub const VERSION_MARKER: &str = concat!("\0scar-supervisor ", env!("CARGO_PKG_VERSION"), "\0");

/// The prefix of [`VERSION_MARKER`], what a reader searches for.
pub const VERSION_MARKER_PREFIX: &str = "\0scar-supervisor ";

/// The version a supervisor binary's bytes carry, if any.
#[must_use]
pub fn marked_version(binary: &[u8]) -> Option<&str> {
    let prefix = VERSION_MARKER_PREFIX.as_bytes();
    let at = binary.windows(prefix.len()).position(|w| w == prefix)? + prefix.len();
    let rest = &binary[at..];
    let end = rest.iter().take(64).position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Text helpers both sides need.
pub mod text {
    /// Decodes `%XX` escapes and `+` (a space), as in URL-encoded forms: IAM policy documents and
    /// S3 event keys come this way. A `%` not followed by two hex digits stays as it is.
    #[must_use]
    pub fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 3;
                        }
                        None => {
                            out.push(b'%');
                            i += 1;
                        }
                    }
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Where image assembly puts the configuration, and the supervisor reads it.
pub const CONFIG_PATH: &str = "/opt/scar/function.json";
/// Where image assembly puts the script (its text is also in the configuration).
pub const SCRIPT_PATH: &str = "/opt/scar/script.sh";
/// Where image assembly puts the supervisor.
pub const SUPERVISOR_PATH: &str = "/opt/scar/bin/scar-supervisor";

/// Every environment variable name scar and the supervisor exchange.
pub mod env {
    /// The configuration as base64 JSON, for experiments (scar never sets it).
    pub const CONFIG: &str = "SCAR_CONFIG";
    /// The stack's name, in every function's environment and the script's.
    pub const STACK: &str = "SCAR_STACK";
    /// The function's name, likewise.
    pub const FUNCTION: &str = "SCAR_FUNCTION";
    /// A prebuilt image's script, base64.
    pub const SCRIPT: &str = "SCAR_SCRIPT";
    /// A prebuilt image's outputs, JSON.
    pub const OUTPUTS: &str = "SCAR_OUTPUTS";
    /// A prebuilt image's storage providers, JSON (secret references only, never values).
    pub const PROVIDERS: &str = "SCAR_PROVIDERS";
    /// The names (comma-separated) of the variables whose value is a secret reference
    /// (`ssm:NAME`, `secretsmanager:ID[#KEY]`): the supervisor gives the script the secret in
    /// their place. Set on every function and Batch job that has secrets.
    pub const SECRETS: &str = "SCAR_SECRETS";
    /// A prebuilt image's timeout threshold in seconds.
    pub const TIMEOUT_THRESHOLD: &str = "SCAR_TIMEOUT_THRESHOLD";
    /// A prebuilt image's supervisor log level.
    pub const LOG_LEVEL: &str = "SCAR_LOG_LEVEL";
    /// The execution mode of a delegating function (`batch` or `lambda-batch`).
    pub const EXECUTION: &str = "SCAR_EXECUTION";
    /// The job queue a delegating function submits to.
    pub const BATCH_JOB_QUEUE: &str = "SCAR_BATCH_JOB_QUEUE";
    /// The job definition a delegating function submits (its latest active revision).
    pub const BATCH_JOB_DEFINITION: &str = "SCAR_BATCH_JOB_DEFINITION";
    /// `true` when the job definition is multi-node (jobs are submitted with `nodeOverrides`).
    pub const BATCH_MULTI_NODE: &str = "SCAR_BATCH_MULTI_NODE";
    /// The event a Batch job handles, JSON, set by the delegating function.
    pub const EVENT: &str = "SCAR_EVENT";
    /// The request id, in a Batch job and in the script's environment.
    pub const REQUEST_ID: &str = "SCAR_REQUEST_ID";
    /// A prebuilt image's Batch failure records (JSON [`crate::records::JobFailures`]).
    pub const BATCH_FAILURES: &str = "SCAR_BATCH_FAILURES";
    /// In a Batch job: the key its failure record goes to, chosen when it was submitted, so
    /// that every attempt writes (or, succeeding, deletes) the same one.
    pub const FAILURE_RECORD: &str = "SCAR_FAILURE_RECORD";
    /// In a Batch job: the ARN of the function that submitted it, which its record names.
    pub const FUNCTION_ARN: &str = "SCAR_FUNCTION_ARN";
    /// A log filter for the supervisor (`debug`, `scar_supervisor=trace`...), over the level.
    pub const LOG: &str = "SCAR_LOG";
    /// Set by `scar invoke --local` and `scar run --local`: work that would be delegated to
    /// Batch is reported (`delegated_job_id` = this variable's value), not submitted; scar then
    /// runs the job command here.
    pub const DELEGATE_HERE: &str = "SCAR_DELEGATE_HERE";

    /// The staged input file (SCAR's name).
    pub const INPUT_FILE_PATH: &str = "INPUT_FILE_PATH";
    /// The folder whose files are uploaded (SCAR's name).
    pub const TMP_OUTPUT_DIR: &str = "TMP_OUTPUT_DIR";
    /// The S3 input's bucket.
    pub const INPUT_BUCKET: &str = "SCAR_INPUT_BUCKET";
    /// The S3 input's key.
    pub const INPUT_KEY: &str = "SCAR_INPUT_KEY";
    /// The HTTP request's method.
    pub const HTTP_METHOD: &str = "SCAR_HTTP_METHOD";
    /// The HTTP request's path.
    pub const HTTP_PATH: &str = "SCAR_HTTP_PATH";
    /// `true`: an HTTP caller whose request fails gets the script's last stderr lines.
    pub const HTTP_EXPOSE_ERRORS: &str = "SCAR_HTTP_EXPOSE_ERRORS";
    /// The bucket of the function's failure records a sweep runs again.
    pub const SWEEP: &str = "SCAR_SWEEP";

    /// Every name above that a function's manifest may not set itself.
    pub const RESERVED: &[&str] = &[
        CONFIG,
        STACK,
        FUNCTION,
        SCRIPT,
        OUTPUTS,
        PROVIDERS,
        SECRETS,
        TIMEOUT_THRESHOLD,
        LOG_LEVEL,
        EXECUTION,
        BATCH_JOB_QUEUE,
        BATCH_JOB_DEFINITION,
        BATCH_MULTI_NODE,
        EVENT,
        REQUEST_ID,
        BATCH_FAILURES,
        FAILURE_RECORD,
        FUNCTION_ARN,
        DELEGATE_HERE,
        INPUT_FILE_PATH,
        TMP_OUTPUT_DIR,
        INPUT_BUCKET,
        INPUT_KEY,
        HTTP_METHOD,
        HTTP_EXPOSE_ERRORS,
        HTTP_PATH,
        SWEEP,
    ];
}

/// Where a function's work runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// Every event runs in Lambda.
    #[default]
    Lambda,
    /// Every event is delegated to AWS Batch.
    Batch,
    /// Runs in Lambda; work that does not fit is delegated to AWS Batch.
    LambdaBatch,
}

impl Execution {
    /// The name manifests and `SCAR_EXECUTION` use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Execution::Lambda => "lambda",
            Execution::Batch => "batch",
            Execution::LambdaBatch => "lambda-batch",
        }
    }

    /// The mode a name stands for.
    #[must_use]
    pub fn parse(s: &str) -> Option<Execution> {
        [Execution::Lambda, Execution::Batch, Execution::LambdaBatch]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// The supervisor's log level (SCAR's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Only critical failures.
    Critical,
    /// Errors.
    Error,
    /// Warnings.
    Warning,
    /// Informational (default).
    #[default]
    Info,
    /// Everything.
    Debug,
}

impl LogLevel {
    /// The name manifests use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Critical => "CRITICAL",
            LogLevel::Error => "ERROR",
            LogLevel::Warning => "WARNING",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }

    /// The level a name stands for (any case).
    #[must_use]
    pub fn parse(s: &str) -> Option<LogLevel> {
        [
            LogLevel::Critical,
            LogLevel::Error,
            LogLevel::Warning,
            LogLevel::Info,
            LogLevel::Debug,
        ]
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(s))
    }
}

/// A reference to a secret kept in AWS. The value never travels in a configuration: the
/// supervisor reads it at cold start with the function's role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum SecretRef {
    /// An SSM Parameter Store parameter (a SecureString is decrypted).
    Ssm(String),
    /// A Secrets Manager secret (name or ARN), and optionally a JSON key inside its string.
    SecretsManager {
        /// Name or ARN.
        id: String,
        /// The JSON field of the secret string to use, if not the whole string.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl SecretRef {
    /// The reference a variable holds (what [`std::fmt::Display`] writes).
    #[must_use]
    pub fn parse(s: &str) -> Option<SecretRef> {
        if let Some(name) = s.strip_prefix("ssm:") {
            return (!name.is_empty()).then(|| SecretRef::Ssm(name.to_owned()));
        }
        let rest = s.strip_prefix("secretsmanager:")?;
        let (id, key) = match rest.split_once('#') {
            Some((id, key)) => (id, Some(key.to_owned())),
            None => (rest, None),
        };
        (!id.is_empty()).then(|| SecretRef::SecretsManager {
            id: id.to_owned(),
            key,
        })
    }
}

impl std::fmt::Display for SecretRef {
    /// `ssm:NAME` or `secretsmanager:ID[#KEY]`: how the reference shows in the function's
    /// environment and in errors. Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Ssm(name) => write!(f, "ssm:{name}"),
            SecretRef::SecretsManager { id, key: Some(k) } => write!(f, "secretsmanager:{id}#{k}"),
            SecretRef::SecretsManager { id, key: None } => write!(f, "secretsmanager:{id}"),
        }
    }
}

/// The secret variables of an environment (`var` reads one): each name `SCAR_SECRETS` lists,
/// with the reference the variable holds.
///
/// # Errors
/// When a listed variable is missing or holds no reference; the error names the variable,
/// never its value.
pub fn secret_vars(
    var: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, SecretRef>, ConfigError> {
    let names = var(env::SECRETS).unwrap_or_default();
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let value = var(name).ok_or_else(|| {
                ConfigError(format!("{name} is listed in {} but not set", env::SECRETS))
            })?;
            let r = SecretRef::parse(&value).ok_or_else(|| {
                ConfigError(format!(
                    "{name} is listed in {} but holds no `ssm:` or `secretsmanager:` reference",
                    env::SECRETS
                ))
            })?;
            Ok((name.to_owned(), r))
        })
        .collect()
}

/// The `SCAR_SECRETS` value that lists `names`.
#[must_use]
pub fn secrets_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// A storage provider outputs can go to, besides the function's own S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum Provider {
    /// S3 with its own credentials (another account), optionally another region.
    S3 {
        /// The buckets' region; default the function's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Access key id.
        access_key: SecretRef,
        /// Secret access key.
        secret_key: SecretRef,
    },
    /// An S3-compatible endpoint (MinIO and the like), addressed path-style.
    Minio {
        /// `https://host:port` (or `http://`).
        endpoint: String,
        /// Verify the endpoint's TLS certificate.
        verify: bool,
        /// The region name the endpoint expects.
        region: String,
        /// Access key.
        access_key: SecretRef,
        /// Secret key.
        secret_key: SecretRef,
    },
    /// A WebDAV server (dCache and the like), with basic authentication.
    Webdav {
        /// The server's base URL (`https://host[:port][/path]`).
        url: String,
        /// The user name.
        login: String,
        /// The password.
        password: SecretRef,
    },
}

impl Provider {
    /// Every secret the provider needs, with the role it plays.
    #[must_use]
    pub fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        match self {
            Provider::S3 {
                access_key,
                secret_key,
                ..
            }
            | Provider::Minio {
                access_key,
                secret_key,
                ..
            } => vec![("access key", access_key), ("secret key", secret_key)],
            Provider::Webdav { password, .. } => vec![("password", password)],
        }
    }
}

/// A filter on the names of output files: a file goes to a destination when its path under
/// `TMP_OUTPUT_DIR` starts with one of `prefix` (or `prefix` is empty) and ends with one of
/// `suffix` (or `suffix` is empty), as in SCAR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFilter {
    /// Accepted beginnings.
    #[serde(default)]
    pub prefix: Vec<String>,
    /// Accepted endings.
    #[serde(default)]
    pub suffix: Vec<String>,
}

impl OutputFilter {
    /// True when the file at `path` (relative to `TMP_OUTPUT_DIR`, `/`-separated) passes.
    #[must_use]
    pub fn accepts(&self, path: &str) -> bool {
        (self.prefix.is_empty() || self.prefix.iter().any(|p| path.starts_with(p.as_str())))
            && (self.suffix.is_empty() || self.suffix.iter().any(|s| path.ends_with(s.as_str())))
    }
}

/// One output destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Bucket (or, on WebDAV, the top folder).
    pub bucket: String,
    /// Key prefix (may be empty); a file's path under `TMP_OUTPUT_DIR` follows it.
    #[serde(default)]
    pub prefix: String,
    /// A provider (`minio.lab`) from [`Config::providers`]; none: the function's own S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Which files go here.
    #[serde(default)]
    pub filter: OutputFilter,
}

impl Output {
    /// `provider:bucket/prefix`, how errors and logs name the destination.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{}",
            self.provider.as_deref().unwrap_or("s3"),
            self.bucket,
            self.prefix
        )
    }
}

/// The base image's own command, recorded at assembly: what runs when a function has no script.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageCommand {
    /// The base's `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// The base's `Cmd`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// The base's `WorkingDir`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

impl ImageCommand {
    /// What to run with call-time `args`: the entrypoint followed by `args` when there are
    /// any, else by `Cmd`, as `docker run IMAGE ARGS` (and SCAR's `scar run FN ARGS`) does.
    #[must_use]
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let tail = if args.is_empty() { &self.cmd } else { args };
        self.entrypoint.iter().chain(tail).cloned().collect()
    }
}

/// A function's configuration: everything the supervisor needs besides the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The stack.
    pub stack: String,
    /// The function.
    pub function: String,
    /// The script (its text); empty runs the image's own command.
    #[serde(default)]
    pub script: String,
    /// The base image's own command, recorded at assembly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<ImageCommand>,
    /// Output destinations.
    #[serde(default)]
    pub outputs: Vec<Output>,
    /// Storage providers outputs refer to, by `<type>.<id>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, Provider>,
    /// `lambda`, `batch` or `lambda-batch`.
    #[serde(default)]
    pub execution: Execution,
    /// Seconds kept back before the function's timeout to stop the script and upload.
    pub timeout_threshold: u32,
    /// The function's timeout in seconds (0: unknown, the platform's deadline rules).
    #[serde(default)]
    pub timeout: u32,
    /// Batch job queue, when delegating.
    #[serde(default)]
    pub batch_job_queue: String,
    /// Batch job definition, when delegating.
    #[serde(default)]
    pub batch_job_definition: String,
    /// The job definition is multi-node: jobs are submitted with `nodeOverrides`.
    #[serde(default)]
    pub batch_multi_node: bool,
    /// Where a job that fails for good records it, and when Batch runs one again. Left out
    /// when the function records no failures (or delegates nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_failures: Option<records::JobFailures>,
    /// The supervisor's log level.
    #[serde(default)]
    pub log_level: LogLevel,
    /// An HTTP caller whose request fails is answered with the script's last stderr lines
    /// (else only with the request id: stderr may hold what callers must not see). Left out
    /// when false, so configurations (and images) of functions that do not set it stay as
    /// they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub http_expose_errors: bool,
    /// The bucket of the function's failure records, which a sweep event
    /// ([`records::SWEEP`]) runs again. Left out when the function is not swept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
}

/// A configuration that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The variables that carry the configuration of a function whose image scar did not
    /// assemble (`prebuilt: true`), besides `SCAR_STACK`, `SCAR_FUNCTION`, the script
    /// (`SCAR_SCRIPT`) and the Batch variables, which every such function gets anyway. Empty
    /// values are left out, so they cost nothing of Lambda's 4 KB.
    #[must_use]
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let json = |v: serde_json::Result<String>| v.unwrap_or_default();
        let mut out = vec![
            (env::OUTPUTS, json(serde_json::to_string(&self.outputs))),
            (env::TIMEOUT_THRESHOLD, self.timeout_threshold.to_string()),
        ];
        if !self.providers.is_empty() {
            out.push((env::PROVIDERS, json(serde_json::to_string(&self.providers))));
        }
        if self.log_level != LogLevel::Info {
            out.push((env::LOG_LEVEL, self.log_level.as_str().to_owned()));
        }
        if self.http_expose_errors {
            out.push((env::HTTP_EXPOSE_ERRORS, "true".to_owned()));
        }
        if let Some(f) = &self.batch_failures {
            out.push((env::BATCH_FAILURES, json(serde_json::to_string(f))));
        }
        if let Some(b) = &self.sweep {
            out.push((env::SWEEP, b.clone()));
        }
        out
    }

    /// The configuration from a function's environment (`var` reads one variable): what
    /// [`Config::env`] wrote, with the stack, function, script and Batch variables.
    ///
    /// # Errors
    /// When a variable holds something unreadable; the error names the variable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        use base64::Engine as _;
        fn parsed<T: serde::de::DeserializeOwned + Default>(
            var: &impl Fn(&str) -> Option<String>,
            name: &str,
        ) -> Result<T, ConfigError> {
            var(name).map_or_else(
                || Ok(T::default()),
                |j| serde_json::from_str(&j).map_err(|e| ConfigError(format!("{name}: {e}"))),
            )
        }
        let script = match var(env::SCRIPT) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| ConfigError(format!("{}: not base64: {e}", env::SCRIPT)))?,
            None => String::new(),
        };
        let execution = match var(env::EXECUTION) {
            Some(e) => Execution::parse(&e)
                .ok_or_else(|| ConfigError(format!("{}: unknown mode `{e}`", env::EXECUTION)))?,
            None => Execution::Lambda,
        };
        let log_level = match var(env::LOG_LEVEL) {
            Some(l) => LogLevel::parse(&l)
                .ok_or_else(|| ConfigError(format!("{}: unknown level `{l}`", env::LOG_LEVEL)))?,
            None => LogLevel::Info,
        };
        let timeout_threshold = match var(env::TIMEOUT_THRESHOLD) {
            Some(t) => t.trim().parse().map_err(|_| {
                ConfigError(format!("{}: not a number: `{t}`", env::TIMEOUT_THRESHOLD))
            })?,
            None => 10,
        };
        Ok(Config {
            stack: var(env::STACK).unwrap_or_default(),
            function: var(env::FUNCTION).unwrap_or_default(),
            script,
            command: None,
            outputs: parsed(&var, env::OUTPUTS)?,
            providers: parsed(&var, env::PROVIDERS)?,
            execution,
            timeout_threshold,
            timeout: 0,
            batch_job_queue: var(env::BATCH_JOB_QUEUE).unwrap_or_default(),
            batch_job_definition: var(env::BATCH_JOB_DEFINITION).unwrap_or_default(),
            batch_multi_node: var(env::BATCH_MULTI_NODE).is_some_and(|v| v == "true"),
            batch_failures: parsed(&var, env::BATCH_FAILURES)?,
            log_level,
            http_expose_errors: var(env::HTTP_EXPOSE_ERRORS).is_some_and(|v| v == "true"),
            sweep: var(env::SWEEP).filter(|b| !b.is_empty()),
        })
    }

    /// The configuration in a JSON document ([`CONFIG_PATH`]'s content).
    ///
    /// # Errors
    /// When it is not a configuration; the error says which field.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ConfigError(format!("the function configuration: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            stack: "s".into(),
            function: "f".into(),
            script: "echo hi\n".into(),
            command: None,
            outputs: vec![Output {
                bucket: "b".into(),
                prefix: "out/".into(),
                provider: Some("minio.lab".into()),
                filter: OutputFilter {
                    prefix: vec!["report-".into()],
                    suffix: vec![".json".into(), ".csv".into()],
                },
            }],
            providers: BTreeMap::from([(
                "minio.lab".to_owned(),
                Provider::Minio {
                    endpoint: "https://minio.example.org".into(),
                    verify: true,
                    region: "us-east-1".into(),
                    access_key: SecretRef::Ssm("/lab/ak".into()),
                    secret_key: SecretRef::SecretsManager {
                        id: "lab".into(),
                        key: Some("sk".into()),
                    },
                },
            )]),
            execution: Execution::LambdaBatch,
            timeout_threshold: 15,
            timeout: 0,
            batch_job_queue: "q".into(),
            batch_job_definition: "d".into(),
            batch_multi_node: true,
            batch_failures: Some(records::JobFailures {
                bucket: "scar-s-failures-1a2b3c4d".into(),
                retry: records::JobRetry {
                    attempts: 2,
                    rules: vec![records::ExitRule {
                        on_status_reason: None,
                        on_reason: None,
                        on_exit_code: Some("75".into()),
                        retry: true,
                    }],
                },
            }),
            log_level: LogLevel::Debug,
            http_expose_errors: true,
            sweep: Some("scar-s-failures-1a2b3c4d".into()),
        }
    }

    #[test]
    fn a_prebuilt_functions_environment_carries_its_configuration() {
        let c = sample();
        let mut env: BTreeMap<String, String> = c
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in [
            (env::STACK, "s"),
            (env::FUNCTION, "f"),
            (env::SCRIPT, "ZWNobyBoaQo="),
            (env::EXECUTION, "lambda-batch"),
            (env::BATCH_JOB_QUEUE, "q"),
            (env::BATCH_JOB_DEFINITION, "d"),
            (env::BATCH_MULTI_NODE, "true"),
        ] {
            env.insert(k.into(), v.into());
        }
        let back = Config::from_env(|k| env.get(k).cloned()).expect("readable");
        assert_eq!(back, c);
        assert!(
            !env.values().any(|v| v.contains("hunter2")),
            "references only"
        );
        let err = Config::from_env(|k| (k == env::TIMEOUT_THRESHOLD).then(|| "soon".to_owned()))
            .expect_err("not a number");
        assert!(err.0.contains(env::TIMEOUT_THRESHOLD), "{err}");
    }

    #[test]
    fn json_round_trips_and_unknown_fields_are_refused() {
        let c = sample();
        let text = serde_json::to_vec(&c).expect("json");
        assert_eq!(Config::from_json(&text).expect("reads"), c);
        let err = Config::from_json(
            br#"{"stack":"s","function":"f","timeout_threshold":1,"surprise":1}"#,
        )
        .expect_err("unknown field");
        assert!(err.0.contains("surprise"), "{err}");
    }

    #[test]
    fn filters_match_paths_under_the_output_folder_as_scar_does() {
        let all = OutputFilter::default();
        assert!(all.accepts("anything"));
        let f = OutputFilter {
            prefix: vec!["report-".into(), "meta/".into()],
            suffix: vec![".json".into()],
        };
        assert!(f.accepts("report-1.json"));
        assert!(
            f.accepts("meta/a.json"),
            "the relative path, as SCAR matches it"
        );
        assert!(!f.accepts("report-1.txt"));
        assert!(!f.accepts("other/report-1.json"));
    }

    #[test]
    fn references_parse_back_from_what_they_display() {
        for r in [
            SecretRef::Ssm("/a/b".into()),
            SecretRef::SecretsManager {
                id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf".into(),
                key: Some("password".into()),
            },
            SecretRef::SecretsManager {
                id: "db".into(),
                key: None,
            },
        ] {
            assert_eq!(SecretRef::parse(&r.to_string()), Some(r));
        }
        for bad in ["", "ssm:", "hunter2", "secretsmanager:", "vault:x"] {
            assert_eq!(SecretRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn secret_variables_are_the_listed_ones() {
        let env = BTreeMap::from([
            (env::SECRETS.to_owned(), "DB,TOKEN".to_owned()),
            ("DB".to_owned(), "ssm:/db".to_owned()),
            ("TOKEN".to_owned(), "secretsmanager:api#token".to_owned()),
            ("LOOKS_LIKE".to_owned(), "ssm:/not/listed".to_owned()),
        ]);
        let got = secret_vars(|k| env.get(k).cloned()).expect("valid");
        assert_eq!(got.keys().collect::<Vec<_>>(), ["DB", "TOKEN"]);
        assert_eq!(secrets_list(["TOKEN", "DB", "DB"]), "DB,TOKEN");
        let bad = BTreeMap::from([
            (env::SECRETS.to_owned(), "DB".to_owned()),
            ("DB".to_owned(), "hunter2".to_owned()),
        ]);
        let err = secret_vars(|k| bad.get(k).cloned()).expect_err("not a reference");
        assert!(err.0.contains("DB") && !err.0.contains("hunter2"), "{err}");
    }

    #[test]
    fn references_display_as_the_environment_shows_them() {
        assert_eq!(SecretRef::Ssm("/a/b".into()).to_string(), "ssm:/a/b");
        assert_eq!(
            SecretRef::SecretsManager {
                id: "db".into(),
                key: Some("password".into())
            }
            .to_string(),
            "secretsmanager:db#password"
        );
    }

    #[test]
    fn the_image_command_takes_call_time_arguments_in_place_of_cmd() {
        let c = ImageCommand {
            entrypoint: vec!["/usr/bin/cowsay".into()],
            cmd: vec!["moo".into()],
            working_dir: None,
        };
        assert_eq!(c.argv(&[]), ["/usr/bin/cowsay", "moo"]);
        assert_eq!(c.argv(&["hi".into()]), ["/usr/bin/cowsay", "hi"]);
    }

    #[test]
    fn the_version_marker_is_found_in_a_binary() {
        let mut bin = vec![0x7f, b'E', b'L', b'F', 1, 2, 3];
        bin.extend_from_slice(VERSION_MARKER.as_bytes());
        bin.extend_from_slice(b"tail");
        assert_eq!(marked_version(&bin), Some(VERSION));
        assert_eq!(marked_version(b"no marker here"), None);
    }
}
