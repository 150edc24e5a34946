//! The operating commands: `scar ls`, `scar put`, `scar get`, `scar logs`. No prompts; `--json`
//! for scripts; progress lines on stderr.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::exit::{Done, Failure, Outcome, success_if};
use super::output::Output;
use super::{AwsArgs, session};
use crate::manifest::load::ManifestSet;
use crate::manifest::types::FunctionManifest;
use crate::model::{DesiredGraph, ResourceKind};

/// The arguments of `scar ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `scar put`.
#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function.
    pub function: String,
    /// Files or folders to upload.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Which of the function's inputs (0 is the first).
    #[arg(long, default_value_t = 0)]
    pub input: usize,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `scar get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function.
    pub function: String,
    /// Which of the function's outputs (0 is the first).
    #[arg(long, default_value_t = 0)]
    pub output: usize,
    /// The folder to download into.
    #[arg(long, default_value = ".")]
    pub to: PathBuf,
    /// Replace files that already exist there (else they are skipped).
    #[arg(long)]
    pub overwrite: bool,
    /// Print JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `scar logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// The function.
    pub function: String,
    /// Only lines that mention this request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// How far back to start (such as 30m, 2h).
    #[arg(long, default_value = "1h", value_parser = crate::watch::parse_duration)]
    pub since: std::time::Duration,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// The stack's manifests, its desired graph and the named function's manifest, or the exit
/// code after saying why not.
pub(super) fn load_function(
    dir: &Path,
    name: &str,
    out: &Output,
) -> Result<(ManifestSet, DesiredGraph, FunctionManifest), Failure> {
    let (set, desired) = session::load_set(dir, out)?;
    let found = set
        .functions
        .iter()
        .find(|f| f.value.metadata.name == name)
        .map(|f| f.value.clone());
    match found {
        Some(f) => Ok((set, desired, f)),
        None => {
            let known: Vec<&str> = set
                .functions
                .iter()
                .map(|f| f.value.metadata.name.as_str())
                .collect();
            out.error(&format!(
                "the stack has no function `{name}`; its functions: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
            Err(Failure::Reported)
        }
    }
}

/// `scar ls DIR [--json]`.
pub(super) fn ls(args: &LsArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, as_json) = (args.dir.as_path(), args.json);
    let (set, desired) = session::load_set(dir, out)?;
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let urls = match cloud.http_urls(&desired).await {
            Ok(u) => u,
            Err(e) => {
                return Err(session::cloud_failed(
                    out,
                    "reading the HTTP endpoints failed",
                    &e,
                ));
            }
        };
        let mut rows = Vec::new();
        for f in &set.functions {
            let name = &f.value.metadata.name;
            let status = match cloud.function_status(name).await {
                Ok(s) => s,
                Err(e) => return Err(session::cloud_failed(out, "reading a function failed", &e)),
            };
            let url = urls
                .get(&crate::model::Address::new(
                    ResourceKind::HttpApi,
                    name.clone(),
                ))
                .cloned();
            let execution = crate::manifest::resolve::effective(
                set.stack().map(|s| &s.value.spec),
                &f.value.spec,
            )
            .execution;
            rows.push(json!({
                "name": name,
                "deployed": status.is_some(),
                "state": status.as_ref().map(|s| s.state.clone()),
                "last_update_status": status.as_ref().map(|s| s.last_update_status.clone()),
                "memory": status.as_ref().map(|s| s.memory),
                "timeout": status.as_ref().map(|s| s.timeout),
                "execution": serde_json::to_value(execution).unwrap_or_default(),
                "image": status.as_ref().map(|s| s.image.clone()),
                "digest": status.as_ref().and_then(|s| s.digest.clone()),
                "supervisor": status.as_ref().and_then(|s| s.supervisor.clone()),
                "last_modified": status.as_ref().map(|s| s.last_modified.clone()),
                "paused": status.as_ref().and_then(|s| s.paused.clone()),
                "url": url,
            }));
        }
        if as_json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"stack": desired.stack, "functions": rows}))
                    .map_err(std::io::Error::other)?
            );
            return Ok(Done::Success);
        }
        let cell = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "-".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let header = [
            "NAME",
            "STATE",
            "UPDATE",
            "MEMORY",
            "TIMEOUT",
            "EXECUTION",
            "DIGEST",
            "SUPERVISOR",
            "URL",
        ];
        let keys = [
            "name",
            "state",
            "last_update_status",
            "memory",
            "timeout",
            "execution",
            "digest",
            "supervisor",
            "url",
        ];
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                keys.iter()
                    .map(|k| {
                        let c = cell(&r[*k]);
                        if *k == "state" && r["deployed"] == false {
                            "not deployed".to_owned()
                        } else if *k == "state" && r["paused"].is_string() {
                            format!("{c} (paused)")
                        } else if *k == "digest" && c.len() > 19 {
                            c[..19].to_owned()
                        } else {
                            c
                        }
                    })
                    .collect()
            })
            .collect();
        super::output::print_table(&header, &table);
        Ok(Done::Success)
    })
}

/// Progress on stderr: one line per file.
pub(super) fn progress(i: usize, n: usize, what: &str) {
    eprintln!("[{i}/{n}] {what}");
}

/// `scar put DIR FUNCTION PATH... [--input N] [--json]`: upload to the function's input.
pub(super) fn put(args: &PutArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, name, paths, input, as_json) = (
        args.dir.as_path(),
        args.function.as_str(),
        args.paths.as_slice(),
        args.input,
        args.json,
    );
    let (_, desired, f) = load_function(dir, name, out)?;
    let Some(target) = f.spec.input.get(input) else {
        out.error(&format!(
            "function `{name}` has {} S3 inputs; there is no input {input} to put files into",
            f.spec.input.len()
        ));
        return Err(Failure::Reported);
    };
    let Some(target) = target.s3() else {
        out.error(&format!(
            "input {input} of function `{name}` is not an S3 input; files go only to S3 inputs"
        ));
        return Err(Failure::Reported);
    };
    let mut files = Vec::new();
    for p in paths {
        match crate::aws::files_to_put(p) {
            Ok(f) => files.extend(f),
            Err(e) => {
                out.error(&format!("{}: {e}", p.display()));
                return Err(Failure::Reported);
            }
        }
    }
    let prefix = target.prefix.clone().unwrap_or_default();
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let uploaded = crate::aws::upload_files(&cloud, target, &files, |i, _, uri| {
            progress(i + 1, files.len(), uri);
        })
        .await;
        let done: Vec<String> = match uploaded {
            Ok(keys) => keys
                .iter()
                .map(|k| format!("s3://{}/{k}", target.bucket))
                .collect(),
            Err((path, e)) => {
                return Err(session::cloud_failed(
                    out,
                    &format!("uploading {}", path.display()),
                    &e,
                ));
            }
        };
        if as_json {
            println!("{}", json!({"uploaded": done}));
        } else {
            println!(
                "Uploaded {} files to s3://{}/{prefix}",
                done.len(),
                target.bucket
            );
        }
        Ok(Done::Success)
    })
}

/// `scar get DIR FUNCTION [--output N] [--to DIR] [--json]`: download the function's outputs.
pub(super) fn get(args: &GetArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, name, output, to, overwrite, as_json) = (
        args.dir.as_path(),
        args.function.as_str(),
        args.output,
        args.to.as_path(),
        args.overwrite,
        args.json,
    );
    let (_, desired, f) = load_function(dir, name, out)?;
    let Some(source) = f.spec.output.get(output).filter(|o| o.provider.is_none()) else {
        out.error(&format!(
            "function `{name}` has no S3 output {output} in the stack's account to get files from"
        ));
        return Err(Failure::Reported);
    };
    let prefix = source.prefix.clone().unwrap_or_default();
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let keys = match cloud.list_keys(&source.bucket, &prefix).await {
            Ok(k) => k,
            Err(e) => return Err(session::cloud_failed(out, "listing the output failed", &e)),
        };
        let keys: Vec<(String, i64)> = keys
            .into_iter()
            .filter(|(k, _)| !k.ends_with('/'))
            .collect();
        let mut done = Vec::new();
        let mut skipped: Vec<(String, String)> = Vec::new();
        let mut failed: Vec<(String, String)> = Vec::new();
        for (i, (key, _)) in keys.iter().enumerate() {
            let rel = key.strip_prefix(&prefix).unwrap_or(key);
            // Object keys are written by whoever may write the bucket: never a path outside
            // the target folder, never a hidden one (`.git/hooks/...`), never through a link,
            // and never over an existing file unless asked.
            if let Some(why) = unsafe_relative_path(rel) {
                skipped.push((key.clone(), why.to_owned()));
                continue;
            }
            let path = to.join(rel);
            if let Some(why) = unsafe_target(to, rel, overwrite) {
                skipped.push((key.clone(), why));
                continue;
            }
            match cloud.download_file(&source.bucket, key, &path).await {
                Ok(()) => {
                    progress(i + 1, keys.len(), &path.display().to_string());
                    done.push(path.display().to_string());
                }
                Err(e) => failed.push((key.clone(), e.to_string())),
            }
        }
        for (key, why) in &skipped {
            out.warn(&format!("skipped {key}: {why}"));
        }
        for (key, why) in &failed {
            out.error(&format!("downloading {key} failed: {why}"));
        }
        if as_json {
            println!(
                "{}",
                json!({
                    "downloaded": done,
                    "skipped": skipped.iter().map(|(k, w)| json!({"key": k, "why": w})).collect::<Vec<_>>(),
                    "failed": failed.iter().map(|(k, w)| json!({"key": k, "error": w})).collect::<Vec<_>>(),
                })
            );
        } else {
            println!(
                "Downloaded {} files from s3://{}/{prefix} to {} ({} skipped, {} failed)",
                done.len(),
                source.bucket,
                to.display(),
                skipped.len(),
                failed.len()
            );
        }
        success_if(failed.is_empty())
    })
}

/// Why an object key's path below the output prefix may not be written under the target
/// folder, if it may not: empty, `.` or `..` parts, a hidden part, a backslash or a NUL.
fn unsafe_relative_path(rel: &str) -> Option<&'static str> {
    if rel.is_empty() || rel.contains(['\\', '\0']) {
        return Some("the key does not make a file name");
    }
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Some("the key does not make a safe relative path");
        }
        if part.starts_with('.') {
            return Some("the key names a hidden path (use the AWS CLI for such keys)");
        }
    }
    None
}

/// Why writing `to/rel` is refused, if it is: a folder on the way is a link (it could lead
/// anywhere), or the file exists and `overwrite` was not given.
fn unsafe_target(to: &Path, rel: &str, overwrite: bool) -> Option<String> {
    let mut at = to.to_path_buf();
    for part in rel.split('/') {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Some(format!("{} is a link", at.display()));
            }
            Ok(m) if m.is_file() && !overwrite => {
                return Some(format!(
                    "{} exists (pass --overwrite to replace it)",
                    at.display()
                ));
            }
            _ => {}
        }
    }
    None
}

/// Where AWS Batch jobs log by default.
const BATCH_LOG_GROUP: &str = "/aws/batch/job";

/// `scar logs DIR FUNCTION [--request-id ID] [--since DURATION] [--follow] [--json]`.
pub(super) fn logs(args: &LogsArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (dir, name, request_id, since, follow, as_json) = (
        args.dir.as_path(),
        args.function.as_str(),
        args.request_id.as_deref(),
        args.since,
        args.follow,
        args.json,
    );
    let (set, desired, f) = load_function(dir, name, out)?;
    let names = crate::manifest::names::derive(&desired.stack, name);
    let mut sources = vec![(names.log_group, None)];
    let eff = crate::manifest::resolve::effective(set.stack().map(|s| &s.value.spec), &f.spec);
    if eff.execution.delegates() {
        // A delegated job logs to Batch's group, in streams named after its job definition.
        sources.push((
            BATCH_LOG_GROUP.to_owned(),
            Some(format!("{}/", names.batch)),
        ));
    }
    let pattern = request_id.map(|id| format!("\"{id}\""));
    let rt = session::runtime()?;
    rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let now = i64::try_from(crate::lock::now()).unwrap_or(0) * 1000;
        let mut start = now - i64::try_from(since.as_millis()).unwrap_or(i64::MAX / 2);
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut events = Vec::new();
            for (group, prefix) in &sources {
                match cloud
                    .log_events(group, prefix.as_deref(), start, pattern.as_deref())
                    .await
                {
                    Ok(e) => events.extend(e),
                    Err(e) => {
                        return Err(session::cloud_failed(out, "reading the logs failed", &e));
                    }
                }
            }
            events.sort_by_key(|e| e.timestamp);
            for e in events {
                if !seen.insert((e.timestamp, e.stream.clone(), e.message.clone())) {
                    continue;
                }
                start = start.max(e.timestamp);
                if as_json {
                    println!("{}", json!(e));
                } else {
                    let secs = u64::try_from(e.timestamp / 1000).unwrap_or(0);
                    println!("{} {} {}", crate::lock::rfc3339(secs), e.stream, e.message);
                }
            }
            if !follow {
                return Ok(Done::Success);
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(Done::Success),
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    })
}
