//! `scar output DIR [ADDRESS] [--json]`: what the stack's live resources expose (function and
//! role ARNs, bucket names, HTTP endpoint URLs, image URIs with their digests, Batch ARNs), read
//! from AWS as `scar plan` reads it: no lock, nothing written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::{AwsArgs, session};
use crate::model::live::{LiveState, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind};

/// The arguments of `scar output`.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// One resource (`function/split`, `http_api/detect`...): its value alone when it has one,
    /// else `attribute = value` lines.
    pub address: Option<String>,
    /// Print JSON: `{ADDRESS: {ATTRIBUTE: VALUE}}` (or the one resource's object).
    #[arg(long)]
    pub json: bool,
}

/// Values that are bookkeeping, not something to hand to another tool.
const INTERNAL: &[&str] = &["account_id", "record", "source_arn"];

/// The outputs of every live resource the manifests name or the stack owns, by address.
fn outputs(desired: &DesiredGraph, live: &LiveState) -> BTreeMap<Address, BTreeMap<String, Value>> {
    let mut all = BTreeMap::new();
    for (address, r) in &live.resources {
        if desired.get(address).is_none() && r.owner != Owner::ThisStack {
            continue;
        }
        let mut values: BTreeMap<String, Value> = r
            .outputs
            .iter()
            .filter(|(k, v)| !INTERNAL.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if address.kind == ResourceKind::Bucket {
            values.insert("name".into(), json!(address.name));
        }
        if !values.is_empty() {
            all.insert(address.clone(), values);
        }
    }
    all
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// `scar output`.
pub(super) fn run(args: &OutputArgs, aws: &AwsArgs, out: &Output) -> Outcome {
    let wanted = match &args.address {
        Some(a) => Some(
            a.parse::<Address>()
                .map_err(|e| Failure::Message(e.to_string()))?,
        ),
        None => None,
    };
    let (_, desired) = session::load_set(&args.dir, out)?;
    let rt = session::runtime()?;
    let live = rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        cloud
            .refresh(&desired)
            .await
            .map_err(|e| session::cloud_failed(out, "reading the stack failed", &e))
    })?;
    let all = outputs(&desired, &live);
    if let Some(address) = wanted {
        let Some(values) = all.get(&address) else {
            out.error(&format!(
                "`{address}` has no outputs: it does not exist, or exposes none; the stack's: {}",
                if all.is_empty() {
                    "none (apply it first)".to_owned()
                } else {
                    all.keys()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            return Err(Failure::Reported);
        };
        if args.json {
            println!("{}", json!(values));
        } else if let [(_, one)] = values.iter().collect::<Vec<_>>().as_slice() {
            println!("{}", text(one));
        } else {
            for (k, v) in values {
                println!("{k} = {}", text(v));
            }
        }
        return Ok(Done::Success);
    }
    if args.json {
        let map: BTreeMap<String, &BTreeMap<String, Value>> =
            all.iter().map(|(a, v)| (a.to_string(), v)).collect();
        println!("{}", json!(map));
        return Ok(Done::Success);
    }
    if all.is_empty() {
        eprintln!(
            "stack `{}` has no live resources: apply it first",
            desired.stack
        );
        return Ok(Done::Success);
    }
    let width = all
        .iter()
        .flat_map(|(a, v)| v.keys().map(move |k| a.to_string().len() + 1 + k.len()))
        .max()
        .unwrap_or(0);
    for (address, values) in &all {
        for (k, v) in values {
            let key = format!("{address}.{k}");
            println!("{key:width$}  {}", text(v));
        }
    }
    Ok(Done::Success)
}
