//! The supervisor's configuration of a function (scar-contract's [`Config`]), built from its
//! manifest and its stack's: what image assembly writes to `/opt/scar/function.json`, and what
//! a prebuilt image's function carries in its environment. Secrets travel as references only.

use std::collections::BTreeMap;

use scar_contract::records::{ExitRule, JobFailures, JobRetry};
use scar_contract::{Config, Execution, LogLevel, Output, OutputFilter, Provider, SecretRef};

use crate::manifest::names;
use crate::manifest::resolve;
use crate::manifest::types::{
    self, BatchRetrySpec, EnvValue, ExitAction, FunctionManifest, StackSpec,
};

/// The URL a WebDAV provider's `hostname` stands for: as written when it has a scheme, else
/// `https://` in front (SCAR's rule).
#[must_use]
pub fn webdav_url(hostname: &str) -> String {
    if hostname.starts_with("https://") || hostname.starts_with("http://") {
        hostname.to_owned()
    } else {
        format!("https://{hostname}")
    }
}

/// The provider `<type>.<id>` names in `providers`, in the contract's form; `None` when there
/// is none by that name, or it is a kind the supervisor cannot write to (validation refuses
/// both).
#[must_use]
pub fn provider(name: &str, providers: &types::StorageProviders) -> Option<Provider> {
    let (kind, id) = name.split_once('.')?;
    let secret = |r: &types::SecretRef| r.to_contract();
    match kind {
        "s3" => providers.s3.get(id).and_then(|p| {
            Some(Provider::S3 {
                region: p.region.clone(),
                access_key: secret(&p.access_key)?,
                secret_key: secret(&p.secret_key)?,
            })
        }),
        "minio" => providers.minio.get(id).and_then(|p| {
            Some(Provider::Minio {
                endpoint: p.endpoint.clone(),
                verify: p.verify.unwrap_or(true),
                region: p.region.clone().unwrap_or_else(|| "us-east-1".into()),
                access_key: secret(&p.access_key)?,
                secret_key: secret(&p.secret_key)?,
            })
        }),
        "webdav" => providers.webdav.get(id).and_then(|p| {
            Some(Provider::Webdav {
                url: webdav_url(&p.hostname),
                login: p.login.clone(),
                password: secret(&p.password)?,
            })
        }),
        _ => None,
    }
}

/// The `SCAR_SECRETS` entry of an environment whose secret variables are `env`'s and
/// `extra`'s, if it has any.
#[must_use]
pub fn secrets_env<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a EnvValue)>,
) -> Option<(&'static str, String)> {
    let names: Vec<&str> = env
        .into_iter()
        .filter(|(_, v)| matches!(v, EnvValue::Secret(_)))
        .map(|(k, _)| k.as_str())
        .collect();
    (!names.is_empty()).then(|| {
        (
            scar_contract::env::SECRETS,
            scar_contract::secrets_list(names),
        )
    })
}

/// Every secret a function reads: its environment's, its Batch job's, and the credentials of
/// the storage providers its outputs use.
#[must_use]
pub fn secret_refs(
    eff: &resolve::Effective,
    f: &types::FunctionSpec,
    stack: &StackSpec,
) -> Vec<SecretRef> {
    let env = eff
        .environment
        .values()
        .chain(eff.batch.iter().flat_map(|b| b.environment.values()))
        .filter_map(|v| match v {
            EnvValue::Secret(s) => s.secret_ref.to_contract(),
            EnvValue::Literal(_) => None,
        });
    let providers = f
        .output
        .iter()
        .filter_map(|o| provider(o.provider.as_deref()?, &stack.storage_providers))
        .flat_map(|p| {
            p.secrets()
                .into_iter()
                .map(|(_, r)| r.clone())
                .collect::<Vec<_>>()
        });
    env.chain(providers).collect()
}

/// The contract's execution mode of a manifest's.
#[must_use]
pub fn execution(e: types::Execution) -> Execution {
    match e {
        types::Execution::Lambda => Execution::Lambda,
        types::Execution::Batch => Execution::Batch,
        types::Execution::LambdaBatch => Execution::LambdaBatch,
    }
}

/// Attempts in all of scar's default retry strategy.
pub const DEFAULT_BATCH_ATTEMPTS: u32 = 3;

/// The retry strategy of a function's Batch jobs (attempts in all, and the rules): the
/// manifest's `batch.retry`, or scar's default. The default runs a job again, up to 3
/// attempts in all, when its host went away (an EC2 instance reclaimed or stopped: Batch's
/// status reason starts `Host EC2`; the container agent lost: reason `AGENT`), and never when
/// the script failed, so a bug is not paid for three times. The job definition carries it,
/// and the supervisor in a job tells its last attempt by it.
#[must_use]
pub fn job_retry(spec: Option<&BatchRetrySpec>) -> JobRetry {
    let rule = |status: Option<&str>, reason: Option<&str>, retry: bool| ExitRule {
        on_status_reason: status.map(str::to_owned),
        on_reason: reason.map(str::to_owned),
        on_exit_code: None,
        retry,
    };
    match spec {
        Some(s) => JobRetry {
            attempts: s.attempts,
            rules: s
                .evaluate_on_exit
                .iter()
                .map(|r| ExitRule {
                    on_status_reason: r.on_status_reason.clone(),
                    on_reason: r.on_reason.clone(),
                    on_exit_code: r.on_exit_code.clone(),
                    retry: r.action == ExitAction::Retry,
                })
                .collect(),
        },
        None => JobRetry {
            attempts: DEFAULT_BATCH_ATTEMPTS,
            rules: vec![
                rule(Some("Host EC2*"), None, true),
                rule(None, Some("AGENT"), true),
                rule(None, Some("*"), false),
            ],
        },
    }
}

/// The configuration of function `f` of stack `stack` (whose spec gives defaults and storage
/// providers), with its script's text. `failures` is the bucket its failure records go to,
/// when it keeps them: a function that delegates to Batch tells its jobs to record there.
#[must_use]
pub fn config(
    stack: &str,
    spec: Option<&StackSpec>,
    f: &FunctionManifest,
    script: String,
    failures: Option<&str>,
) -> Config {
    let eff = resolve::effective(spec, &f.spec);
    let batch_name = names::derive(stack, &f.metadata.name).batch;
    let outputs: Vec<Output> = f
        .spec
        .output
        .iter()
        .map(|o| {
            let filter = o.filter.clone().unwrap_or_default();
            Output {
                bucket: o.bucket.clone(),
                prefix: o.prefix.clone().unwrap_or_default(),
                provider: o.provider.clone(),
                filter: OutputFilter {
                    prefix: filter.prefix,
                    suffix: filter.suffix,
                },
            }
        })
        .collect();
    let providers = spec.map_or_else(BTreeMap::new, |s| {
        outputs
            .iter()
            .filter_map(|o| o.provider.as_ref())
            .filter_map(|name| Some((name.clone(), provider(name, &s.storage_providers)?)))
            .collect()
    });
    let batch = eff.batch.as_ref();
    Config {
        stack: stack.to_owned(),
        function: f.metadata.name.clone(),
        script,
        command: None,
        outputs,
        providers,
        execution: execution(eff.execution),
        timeout_threshold: eff.timeout_threshold,
        timeout: eff.timeout,
        batch_job_queue: batch_name.clone(),
        batch_job_definition: batch_name,
        batch_multi_node: batch.is_some_and(|b| b.multi_node.is_some()),
        batch_failures: failures
            .filter(|_| eff.execution != types::Execution::Lambda)
            .map(|bucket| JobFailures {
                bucket: bucket.to_owned(),
                retry: job_retry(batch.and_then(|b| b.retry.as_ref())),
            }),
        log_level: match eff.log_level {
            types::LogLevel::Critical => LogLevel::Critical,
            types::LogLevel::Error => LogLevel::Error,
            types::LogLevel::Warning => LogLevel::Warning,
            types::LogLevel::Info => LogLevel::Info,
            types::LogLevel::Debug => LogLevel::Debug,
        },
        http_expose_errors: f
            .spec
            .http
            .as_ref()
            .and_then(|h| h.expose_errors)
            .unwrap_or(false),
        // Not swept until the control plane schedules a sweep (`schedule.sweep`).
        sweep: None,
    }
}
