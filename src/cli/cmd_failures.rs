//! `scar failures DIR [FUNCTION] [--since DURATION] [--json]`: the inputs whose invocations
//! Lambda gave up on, read from where the stack's failure policies send their records
//! (docs/commands/failures.md).

use std::path::PathBuf;

use serde_json::json;

use super::AwsArgs;
use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::session;
use crate::failures::{self as records, MAX_RECORD_BYTES};
use crate::manifest::resolve::{self, Destination};
use crate::model::failures::policy;

/// `scar failures`.
#[derive(Debug, clap::Args)]
pub struct FailuresArgs {
    /// The stack directory
    pub dir: PathBuf,
    /// Only this function's failed inputs
    pub function: Option<String>,
    /// Only inputs Lambda gave up on within this long: 30m, 12h, 7d
    #[arg(long)]
    pub since: Option<String>,
    /// One JSON document: the stack and its failed inputs
    #[arg(long)]
    pub json: bool,
}

/// Where one function's records are.
struct Source {
    function: String,
    bucket: String,
}

/// `7d`, or what [`crate::watch::parse_duration`] takes; in seconds.
fn since_seconds(s: &str) -> Result<u64, String> {
    match s.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => days
            .checked_mul(86_400)
            .ok_or_else(|| format!("`{s}` is too long a duration")),
        _ => crate::watch::parse_duration(s)
            .map(|d| d.as_secs())
            .map_err(|e| format!("--since: {e}, or days such as 7d")),
    }
}

/// `scar failures`.
pub(super) fn run(args: &FailuresArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let (set, desired) = session::load_set(&args.dir, out)?;
    let Some(stack) = set.stack().map(|s| &s.value) else {
        return Err(Failure::Reported);
    };
    if let Some(name) = &args.function
        && !set.functions.iter().any(|f| f.value.metadata.name == *name)
    {
        out.error(&format!("the stack has no function `{name}`"));
        return Err(Failure::Reported);
    }
    let cutoff = match &args.since {
        Some(s) => {
            let secs = since_seconds(s).map_err(|e| {
                out.error(&e);
                Failure::Reported
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Some(crate::lock::rfc3339(now.saturating_sub(secs)))
        }
        None => None,
    };
    let mut sources = Vec::new();
    for f in &set.functions {
        let name = &f.value.metadata.name;
        if args.function.as_ref().is_some_and(|n| n != name) {
            continue;
        }
        let eff = resolve::effective(Some(&stack.spec), &f.value.spec);
        match policy(&stack.metadata.name, &stack.spec, &f.value.spec, &eff) {
            Some(p) => match (&p.bucket, &p.on_failure.destination) {
                (Some(bucket), _) => sources.push(Source {
                    function: name.clone(),
                    bucket: bucket.clone(),
                }),
                (None, Destination::Queue(q)) => out.warn(&format!(
                    "function `{name}` sends its failed inputs to the queue {q}: read them there (scar does not take messages off a queue it does not own)"
                )),
                (None, _) => out.warn(&format!(
                    "function `{name}` keeps no record of failed inputs (`onFailure.destination: none`)"
                )),
            },
            None if args.function.is_some() => out.warn(&format!(
                "function `{name}` has no failure policy (`onFailure`) with an S3 input: Lambda keeps no record of its failed inputs"
            )),
            None => {}
        }
    }
    let rt = session::runtime()?;
    let found = rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        let mut found = Vec::new();
        for s in &sources {
            let keys = match cloud
                .list_keys(&s.bucket, &records::prefix(&s.function))
                .await
            {
                Ok(k) => k,
                Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    return Err(session::cloud_failed(
                        out,
                        "listing the failure records failed",
                        &e,
                    ));
                }
            };
            for (key, _) in keys {
                // The key names the day: older days are not read at all.
                if let (Some(c), Some((y, m, d))) =
                    (&cutoff, records::day_of_key(&key, &s.function))
                    && *format!("{y:04}-{m:02}-{d:02}") < *c.get(..10).unwrap_or(c)
                {
                    continue;
                }
                let at = format!("s3://{}/{key}", s.bucket);
                let bytes = match cloud.read_object(&s.bucket, &key, MAX_RECORD_BYTES).await {
                    Ok(b) => b,
                    Err(e) => {
                        out.warn(&format!("{at}: {e}"));
                        continue;
                    }
                };
                match records::parse(&at, &bytes) {
                    Ok(f)
                        if cutoff
                            .as_ref()
                            .is_none_or(|c| f.time.get(..19) >= c.get(..19)) =>
                    {
                        found.push(f);
                    }
                    Ok(_) => {}
                    Err(e) => out.warn(&e.to_string()),
                }
            }
        }
        Ok(found)
    })?;
    let mut found = found;
    found.sort_by(|a, b| (&a.time, &a.function).cmp(&(&b.time, &b.function)));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"stack": desired.stack, "failures": found}))
                .map_err(std::io::Error::other)?
        );
        return Ok(Done::Success);
    }
    if found.is_empty() {
        println!("no failed inputs");
        return Ok(Done::Success);
    }
    let header = ["FUNCTION", "TIME", "ATTEMPTS", "INPUT", "REASON"];
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|f| {
            vec![
                f.function.clone(),
                f.time.clone(),
                f.attempts.to_string(),
                f.input.clone().unwrap_or_else(|| "-".into()),
                format!("{}: {}", f.condition, f.reason),
            ]
        })
        .collect();
    super::output::print_table(&header, &rows);
    println!(
        "\n{} failed input(s); each record's request id finds its log lines (`scar logs`)",
        found.len()
    );
    Ok(Done::Success)
}
