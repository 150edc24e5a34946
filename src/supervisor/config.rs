//! What the supervisor needs to know about its function: where outputs go, where to delegate,
//! how long it may run, and the script. In a deployed function it comes from `SCAR_CONFIG`
//! (base64 JSON) or `/opt/scar/function.json`; in local mode it is built from the Function
//! manifest.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::manifest::names;
use crate::manifest::resolve;
use crate::manifest::types::{Execution, FunctionManifest, OutputFilter};

/// Where the image assembly puts the configuration.
pub const CONFIG_PATH: &str = "/opt/scar/function.json";

/// One output destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Bucket.
    pub bucket: String,
    /// Key prefix (may be empty).
    #[serde(default)]
    pub prefix: String,
    /// A storage provider other than the function's own S3 (`minio.lab`), if any.
    #[serde(default)]
    pub provider: Option<String>,
    /// Which files go here.
    #[serde(default)]
    pub filter: OutputFilter,
}

impl Output {
    /// True when a file named `name` (its last path segment) goes to this destination.
    #[must_use]
    pub fn accepts(&self, name: &str) -> bool {
        let f = &self.filter;
        (f.prefix.is_empty() || f.prefix.iter().any(|p| name.starts_with(p.as_str())))
            && (f.suffix.is_empty() || f.suffix.iter().any(|s| name.ends_with(s.as_str())))
    }
}

/// The supervisor's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The stack.
    pub stack: String,
    /// The function.
    pub function: String,
    /// The script (its text); empty runs the image's own command.
    #[serde(default)]
    pub script: String,
    /// Output destinations.
    #[serde(default)]
    pub outputs: Vec<Output>,
    /// `lambda`, `batch` or `lambda-batch`.
    pub execution: Execution,
    /// Seconds kept back before the function's timeout to stop the script and upload.
    pub timeout_threshold: u32,
    /// The function's timeout in seconds.
    pub timeout: u32,
    /// Batch job queue and definition, when delegating.
    #[serde(default)]
    pub batch_job_queue: String,
    /// Batch job definition name.
    #[serde(default)]
    pub batch_job_definition: String,
}

/// A configuration that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The content is not what was expected.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Builds the configuration of the Function manifest in `yaml` (its file at `path`, for
    /// the script), in stack `stack`.
    ///
    /// # Errors
    /// When the manifest or its script cannot be read.
    pub fn from_manifest(path: &Path, stack: &str) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let docs = crate::manifest::yaml::parse(&text).map_err(|e| {
            ConfigError::Invalid(format!(
                "{}:{}:{}: {}",
                path.display(),
                e.span.line,
                e.span.col,
                e.message
            ))
        })?;
        let doc = docs
            .first()
            .ok_or_else(|| ConfigError::Invalid(format!("{}: no document", path.display())))?;
        let value = crate::manifest::yaml::to_json(&doc.root).0;
        let f: FunctionManifest = serde_json::from_value(value).map_err(|e| {
            ConfigError::Invalid(format!(
                "{} is not a Function manifest: {e}",
                path.display()
            ))
        })?;
        let script = match &f.spec.script {
            Some(s) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(s);
                std::fs::read_to_string(&p).map_err(|source| ConfigError::Io {
                    path: p.display().to_string(),
                    source,
                })?
            }
            None => String::new(),
        };
        Ok(Config::of(stack, None, &f, script))
    }

    /// The configuration of function `f` of stack `stack` (whose spec gives defaults), with its
    /// script's text.
    #[must_use]
    pub fn of(
        stack: &str,
        stack_spec: Option<&crate::manifest::types::StackSpec>,
        f: &FunctionManifest,
        script: String,
    ) -> Config {
        let eff = resolve::effective(stack_spec, &f.spec);
        let batch = names::derive(stack, &f.metadata.name).batch;
        Config {
            stack: stack.to_owned(),
            function: f.metadata.name.clone(),
            script,
            outputs: f
                .spec
                .output
                .iter()
                .map(|o| Output {
                    bucket: o.bucket.clone(),
                    prefix: o.prefix.clone().unwrap_or_default(),
                    provider: o.provider.clone(),
                    filter: o.filter.clone().unwrap_or_default(),
                })
                .collect(),
            execution: eff.execution,
            timeout_threshold: eff.timeout_threshold,
            timeout: eff.timeout,
            batch_job_queue: batch.clone(),
            batch_job_definition: batch,
        }
    }

    /// The deployed configuration: `SCAR_CONFIG` (base64 JSON), else [`CONFIG_PATH`] (where
    /// image assembly puts it), else the environment of a prebuilt image's function
    /// ([`Config::from_env`]).
    ///
    /// # Errors
    /// When none is there or readable.
    pub fn deployed() -> Result<Config, ConfigError> {
        use base64::Engine as _;
        let json = match std::env::var("SCAR_CONFIG") {
            Ok(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ConfigError::Invalid(format!("SCAR_CONFIG is not base64: {e}")))?,
            Err(_) => match std::fs::read(CONFIG_PATH) {
                Ok(bytes) => bytes,
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && std::env::var_os(FUNCTION_ENV).is_some() =>
                {
                    return Config::from_env(|k| std::env::var(k).ok());
                }
                Err(source) => {
                    return Err(ConfigError::Io {
                        path: CONFIG_PATH.to_owned(),
                        source,
                    });
                }
            },
        };
        serde_json::from_slice(&json)
            .map_err(|e| ConfigError::Invalid(format!("the function configuration: {e}")))
    }
}

/// The function's name, in every function's environment.
pub const FUNCTION_ENV: &str = "SCAR_FUNCTION";
/// Its outputs (JSON), in a prebuilt image's function's environment.
pub const OUTPUTS_ENV: &str = "SCAR_OUTPUTS";
/// Its timeout threshold in seconds, likewise.
pub const TIMEOUT_THRESHOLD_ENV: &str = "SCAR_TIMEOUT_THRESHOLD";

impl Config {
    /// The environment variables that carry the configuration of a function whose image scar
    /// did not assemble (`prebuilt: true`), besides `SCAR_STACK`, `SCAR_FUNCTION`, the script
    /// (`SCAR_SCRIPT`) and the Batch variables.
    #[must_use]
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                OUTPUTS_ENV,
                serde_json::to_string(&self.outputs).unwrap_or_else(|_| "[]".into()),
            ),
            (TIMEOUT_THRESHOLD_ENV, self.timeout_threshold.to_string()),
        ]
    }

    /// The configuration from a function's environment (`var` reads one variable): what
    /// [`Config::env`] wrote, with the stack, function, script and Batch variables.
    ///
    /// # Errors
    /// When a variable holds something unreadable.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        use base64::Engine as _;
        let script = match var(crate::model::SCRIPT_ENV) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| ConfigError::Invalid(format!("SCAR_SCRIPT is not base64: {e}")))?,
            None => String::new(),
        };
        let outputs = match var(OUTPUTS_ENV) {
            Some(j) => serde_json::from_str(&j)
                .map_err(|e| ConfigError::Invalid(format!("{OUTPUTS_ENV}: {e}")))?,
            None => Vec::new(),
        };
        let execution = match var(crate::model::batch::EXECUTION_ENV) {
            Some(e) => serde_json::from_value(serde_json::Value::String(e.clone()))
                .map_err(|_| ConfigError::Invalid(format!("SCAR_EXECUTION: `{e}`")))?,
            None => Execution::Lambda,
        };
        Ok(Config {
            stack: var("SCAR_STACK").unwrap_or_default(),
            function: var(FUNCTION_ENV).unwrap_or_default(),
            script,
            outputs,
            execution,
            timeout_threshold: var(TIMEOUT_THRESHOLD_ENV)
                .and_then(|t| t.parse().ok())
                .unwrap_or(10),
            timeout: 0,
            batch_job_queue: var(crate::model::batch::JOB_QUEUE_ENV).unwrap_or_default(),
            batch_job_definition: var(crate::model::batch::JOB_DEFINITION_ENV).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_file_names() {
        let all = Output {
            bucket: "b".into(),
            prefix: String::new(),
            provider: None,
            filter: OutputFilter::default(),
        };
        assert!(all.accepts("anything"));
        let some = Output {
            filter: OutputFilter {
                prefix: vec!["report-".into()],
                suffix: vec![".json".into(), ".csv".into()],
            },
            ..all
        };
        assert!(some.accepts("report-1.json"));
        let c = Config {
            stack: "s".into(),
            function: "f".into(),
            script: "echo hi\n".into(),
            outputs: vec![some.clone()],
            execution: Execution::LambdaBatch,
            timeout_threshold: 15,
            timeout: 0,
            batch_job_queue: "q".into(),
            batch_job_definition: "d".into(),
        };
        let mut env: std::collections::HashMap<String, String> = c
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (k, v) in [
            ("SCAR_STACK", "s"),
            ("SCAR_FUNCTION", "f"),
            ("SCAR_SCRIPT", "ZWNobyBoaQo="),
            ("SCAR_EXECUTION", "lambda-batch"),
            ("SCAR_BATCH_JOB_QUEUE", "q"),
            ("SCAR_BATCH_JOB_DEFINITION", "d"),
        ] {
            env.insert(k.into(), v.into());
        }
        let back = Config::from_env(|k| env.get(k).cloned()).expect("readable");
        assert_eq!(
            back, c,
            "a prebuilt function's environment carries its configuration"
        );
        assert!(!some.accepts("report-1.txt"));
        assert!(!some.accepts("summary.csv"));
    }
}
