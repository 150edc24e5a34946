//! Benchmark of plan and apply against moto on loopback (not a timed test: it prints figures).
//!
//! For N = 100 and 500 generated functions (half with S3 triggers): a no-op `scar plan`, side by
//! side with (a) the floor, the same read calls issued directly with the SDK at the same
//! concurrency, and (b) the same reads one at a time, as SCAR does; requests and writes per
//! function (counted by a proxy); peak RSS. For N = 100: `scar apply` creating everything and
//! `scar destroy` removing it, against SCAR 4.3.1's measured cost on moto.
//!
//! moto serves requests one at a time, so against moto itself concurrency cannot beat
//! sequential reads; the run therefore also times the three read paths through a proxy that
//! adds 20 ms to every request, a model of a real AWS endpoint's latency.
//!
//! Run: `./scripts/bench.sh` (or `cargo bench --bench reconcile` with moto installed).
//! Client-side rate limits are off for the timed plan and for the floor (`SCAR_RATE_LIMIT=off`):
//! moto has no quotas, and the floor has no limiter. Apply and destroy are timed with the
//! limits on, as they run against AWS.

#[allow(dead_code, reason = "shared with the tests, which use the rest")]
#[path = "../tests/it/support/moto.rs"]
mod moto;
#[allow(dead_code, reason = "shared with the tests, which use the rest")]
#[path = "../tests/it/support/proxy.rs"]
mod proxy;
#[path = "../tests/it/support/registry.rs"]
#[allow(dead_code, reason = "the benches use part of it")]
mod registry;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

const CONCURRENCY: usize = 32;
const LATENCY_MS: u64 = 20;

fn write_stack(dir: &Path, n: usize) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(
        dir.join("stack.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: bench\nspec:\n  region: us-east-1\n  role:\n    managed: true\n",
    )
    .expect("write");
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: f{i:04}\nspec:\n  image: grycap/imagemagick\n  memory: 512\n"
        ));
        if i % 2 == 0 {
            text.push_str(&format!(
                "  input:\n    - bucket: bench-in\n      prefix: in/f{i:04}/\n"
            ));
        }
        text.push_str(&format!(
            "  output:\n    - bucket: bench-out\n      prefix: out/f{i:04}/\n"
        ));
    }
    std::fs::write(dir.join("functions.yaml"), text).expect("write");
}

/// Runs scar, returning (wall time, peak RSS in KiB).
fn timed_scar(endpoint: &str, dir: &Path, args: &[&str], limits: bool) -> (Duration, u64) {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%M")
        .arg(env!("CARGO_BIN_EXE_scar"))
        .args(args);
    let scar = moto::scar_command(endpoint, dir, &[]);
    for (k, v) in scar.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(dir);
    if !limits {
        cmd.env("SCAR_RATE_LIMIT", "off");
    }
    let t = Instant::now();
    let out = cmd.output().expect("scar runs");
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scar {args:?} failed:\n{err}");
    let rss = err
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (took, rss)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The read calls a no-op plan makes, issued directly with the SDK.
async fn floor(config: &aws_config::SdkConfig, n: usize, concurrency: usize) -> Duration {
    let lambda = aws_sdk_lambda::Client::new(config);
    let s3 = moto::s3(config);
    let iam = aws_sdk_iam::Client::new(config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let sts = aws_sdk_sts::Client::new(config);
    let tagging = aws_sdk_resourcegroupstagging::Client::new(config);
    let t = Instant::now();
    sts.get_caller_identity().send().await.expect("sts");
    let mut token = None;
    loop {
        let page = tagging
            .get_resources()
            .tag_filters(
                aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                    .key("scar:stack")
                    .values("bench")
                    .build(),
            )
            .resource_type_filters("lambda:function")
            .resource_type_filters("s3")
            .set_pagination_token(token)
            .send()
            .await
            .expect("tagging");
        token = page
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    stream::iter(0..n)
        .map(|i| {
            let lambda = lambda.clone();
            async move {
                let name = format!("f{i:04}");
                lambda
                    .get_function()
                    .function_name(&name)
                    .send()
                    .await
                    .expect("get function");
                // As scar does: the policy only of functions that have S3 triggers.
                if i % 2 == 0 {
                    let _ = lambda.get_policy().function_name(&name).send().await;
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut token = None;
    loop {
        let page = logs
            .describe_log_groups()
            .log_group_name_prefix("/aws/lambda/")
            .set_next_token(token)
            .send()
            .await
            .expect("logs");
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    stream::iter(["bench-in", "bench-out"])
        .map(|b| {
            let s3 = s3.clone();
            async move {
                s3.get_bucket_location()
                    .bucket(b)
                    .send()
                    .await
                    .expect("location");
                let _ = s3.get_bucket_tagging().bucket(b).send().await;
                let _ = s3
                    .get_bucket_notification_configuration()
                    .bucket(b)
                    .send()
                    .await;
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    iam.get_role()
        .role_name("scar-bench-exec")
        .send()
        .await
        .expect("role");
    iam.get_role_policy()
        .role_name("scar-bench-exec")
        .policy_name("scar")
        .send()
        .await
        .expect("policy");
    t.elapsed()
}

/// The plan's requests other than `GetFunction` and `GetPolicy`, counted by kind (method, the
/// path's first segments with names and numbers left out, the target or action).
fn other_requests(log: &[String]) -> String {
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for l in log {
        let mut parts = l.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "GET" && path.starts_with("/2015-03-31/functions/") {
            continue;
        }
        let rest: Vec<&str> = parts.take(2).filter(|p| !p.starts_with('{')).collect();
        let path = path.split('?').next().unwrap_or("");
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).take(2).collect();
        let shape = segments
            .iter()
            .map(|s| {
                if s.chars().any(|c| c.is_ascii_digit()) {
                    "*"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        *kinds
            .entry(
                format!("{method} /{shape} {}", rest.join(" "))
                    .trim()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_write(line: &str) -> bool {
    let mut p = line.split(' ');
    let method = p.next().unwrap_or("");
    let path = p.next().unwrap_or("");
    let target = p.next().unwrap_or("");
    let action = p.next().unwrap_or("");
    let op = if !target.is_empty() {
        target.rsplit('.').next().unwrap_or("")
    } else {
        action
    };
    if !op.is_empty() {
        return !["Get", "List", "Describe"]
            .iter()
            .any(|r| op.starts_with(r));
    }
    // Batch reads are POSTs to /v1/describe...; other REST APIs (Lambda, S3, API Gateway)
    // read with GET and HEAD.
    if path.starts_with("/v1/describe") {
        return false;
    }
    !(method == "GET" || method == "HEAD") || path.contains("/invocations")
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().expect("tempdir");
    let scar_create_per_fn = 0.42;
    let scar_trigger_sleep = 2.0;
    let scar_delete_per_fn = 0.4;
    println!(
        "scar reconcile benchmark (moto 5.2.5 on loopback; {} cores)",
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!();
    for n in [100usize, 500] {
        let moto = moto::Moto::start();
        let dir = work.path().join(format!("n{n}"));
        write_stack(&dir, n);
        let (apply, apply_rss) = timed_scar(
            &moto.endpoint,
            &dir,
            &["apply", ".", "--auto-approve", "--parallelism", "32"],
            n == 100,
        );
        let config = moto.sdk().await;
        // Warm both paths once, then take medians of three.
        let _ = timed_scar(
            &moto.endpoint,
            &dir,
            &["plan", ".", "--detailed-exitcode"],
            false,
        );
        let _ = floor(&config, n, CONCURRENCY).await;
        let mut plans = Vec::new();
        let mut rss = 0;
        for _ in 0..3 {
            let (t, r) = timed_scar(
                &moto.endpoint,
                &dir,
                &["plan", ".", "--detailed-exitcode"],
                false,
            );
            plans.push(t);
            rss = rss.max(r);
        }
        let mut floors = Vec::new();
        let mut seqs = Vec::new();
        for _ in 0..3 {
            floors.push(floor(&config, n, CONCURRENCY).await);
            seqs.push(floor(&config, n, 1).await);
        }
        let proxy = proxy::Proxy::start(moto.port(), proxy::Fault::None);
        let _ = timed_scar(&proxy.endpoint, &dir, &["plan", "."], false);
        let log = proxy.log.lock().expect("log").clone();
        let writes = log.iter().filter(|l| is_write(l)).count();
        let (plan, fl, seq) = (median(plans), median(floors), median(seqs));
        let slow = proxy::Proxy::start(moto.port(), proxy::Fault::Delay(LATENCY_MS));
        let slow_config = moto::sdk_config(&slow.endpoint).await;
        let (slow_plan, _) = timed_scar(
            &slow.endpoint,
            &dir,
            &["plan", ".", "--detailed-exitcode"],
            false,
        );
        let slow_floor = floor(&slow_config, n, CONCURRENCY).await;
        let slow_seq = floor(&slow_config, n, 1).await;
        println!("N = {n} functions ({} with S3 triggers)", n.div_ceil(2));
        println!(
            "  no-op scar plan        {:>8.2} s   (process, incl. start-up and validation)",
            plan.as_secs_f64()
        );
        println!(
            "  floor: SDK, {CONCURRENCY} at once {:>8.2} s   scar/floor = {:.2}x (target <= 1.5x)",
            fl.as_secs_f64(),
            plan.as_secs_f64() / fl.as_secs_f64()
        );
        println!(
            "  sequential (as SCAR)   {:>8.2} s   sequential/scar = {:.1}x (target >= 5x)",
            seq.as_secs_f64(),
            seq.as_secs_f64() / plan.as_secs_f64()
        );
        println!("  with {LATENCY_MS} ms added to every request (a model of AWS latency):");
        println!(
            "    no-op scar plan      {:>8.2} s",
            slow_plan.as_secs_f64()
        );
        println!(
            "    floor                {:>8.2} s   scar/floor = {:.2}x (target <= 1.5x)",
            slow_floor.as_secs_f64(),
            slow_plan.as_secs_f64() / slow_floor.as_secs_f64()
        );
        println!(
            "    sequential (as SCAR) {:>8.2} s   sequential/scar = {:.1}x (target >= 5x)",
            slow_seq.as_secs_f64(),
            slow_seq.as_secs_f64() / slow_plan.as_secs_f64()
        );
        let policies = log.iter().filter(|l| l.contains("/policy")).count();
        let get_functions = log
            .iter()
            .filter(|l| l.starts_with("GET /2015-03-31/functions/") && !l.contains("/policy"))
            .count();
        println!(
            "  requests               {:>8}     {:.2} per function (target <= 2): {get_functions} GetFunction, {policies} GetPolicy; {writes} writes (target 0)",
            log.len(),
            log.len() as f64 / n as f64
        );
        println!("  other requests: {}", other_requests(&log));
        println!(
            "  on AWS, scar's limits (GetFunction 100/s, GetPolicy 15/s) put a floor of {:.1} s under this plan",
            (n as f64 / 100.0).max(policies as f64 / 15.0)
        );
        println!(
            "  peak RSS (plan)        {:>8.1} MB  (target < 100 MB); apply peak {:.1} MB",
            rss as f64 / 1024.0,
            apply_rss as f64 / 1024.0
        );
        if n == 100 {
            let scar_apply =
                n as f64 * scar_create_per_fn + n.div_ceil(2) as f64 * scar_trigger_sleep;
            let scar_destroy = n as f64 * scar_delete_per_fn;
            let all = ["--auto-approve", "--parallelism", "32"];
            let (destroy, _) = timed_scar(
                &moto.endpoint,
                &dir,
                &[&["destroy", "."][..], &all].concat(),
                true,
            );
            let (apply_free, _) = timed_scar(
                &moto.endpoint,
                &dir,
                &[&["apply", "."][..], &all].concat(),
                false,
            );
            let (destroy_free, _) = timed_scar(
                &moto.endpoint,
                &dir,
                &[&["destroy", "."][..], &all].concat(),
                false,
            );
            println!(
                "  SCAR 4.3.1 on moto: create ~{scar_apply:.0} s (0.42 s a function + 2 s a trigger), delete ~{scar_destroy:.0} s (0.4 s a function)"
            );
            println!(
                "  apply (create all)     {:>8.2} s   {:.1}x faster, Lambda's quotas kept (target >= 10x)",
                apply.as_secs_f64(),
                scar_apply / apply.as_secs_f64()
            );
            println!(
                "                         {:>8.2} s   {:.1}x faster, client limits off as SCAR runs",
                apply_free.as_secs_f64(),
                scar_apply / apply_free.as_secs_f64()
            );
            println!(
                "  destroy                {:>8.2} s   {:.1}x faster, Lambda's quotas kept (target >= 10x)",
                destroy.as_secs_f64(),
                scar_destroy / destroy.as_secs_f64()
            );
            println!(
                "                         {:>8.2} s   {:.1}x faster, client limits off as SCAR runs",
                destroy_free.as_secs_f64(),
                scar_destroy / destroy_free.as_secs_f64()
            );
        } else {
            println!("  apply (setup, limits off) {:>5.2} s", apply.as_secs_f64());
        }
        println!();
    }
}
