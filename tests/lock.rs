//! The stack lock against moto: two applies at once (one holds the lock, the other reports
//! the holder and writes nothing), `scar unlock` with the id the message gives, a crashed
//! holder's lease taken over once it ran out, and `plan` never taking the lock.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::moto::{Moto, scar_command};
use support::proxy::{Fault, Proxy};
use support::{ok, stderr, stdout};

const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: locked
spec:
  region: us-east-1
  role:
    managed: true
";

fn stack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), STACK).expect("write");
    for name in ["one", "two"] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  image: grycap/cowsay\n  input:\n    - bucket: locked-data\n      prefix: {name}/\n"
            ),
        )
        .expect("write");
    }
    dir
}

/// Function names in moto.
async fn functions(moto: &Moto) -> Vec<String> {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let mut names: Vec<String> = lambda
        .list_functions()
        .send()
        .await
        .expect("list")
        .functions()
        .iter()
        .filter_map(|f| f.function_name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Starts `scar apply` through a proxy that holds the first `CreateFunction`, and waits until
/// it is held: the apply (one step at a time) then holds the lock mid-way, and writes no more.
fn apply_held_midway(
    moto: &Moto,
    dir: &std::path::Path,
    lease: &str,
) -> (Proxy, std::process::Child) {
    let probe = Proxy::start(moto.port(), Fault::None);
    let plan = moto.scar_via(&probe.endpoint, dir, &["plan", "."]);
    ok(&plan);
    // The apply's requests: the plan's reads, the lock's, then the writes. Hold the first write
    // to Lambda, well after the lock was taken.
    let reads = probe.requests.load(Ordering::SeqCst);
    let proxy = Proxy::start(moto.port(), Fault::HangBefore(reads + 8));
    let child = scar_command(
        &proxy.endpoint,
        dir,
        &["apply", ".", "--auto-approve", "--parallelism", "1"],
    )
    .env("SCAR_LOCK_LEASE", lease)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("scar starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy.hanging.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        proxy.hanging.load(Ordering::SeqCst),
        "the first apply never got mid-way"
    );
    (proxy, child)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_apply_reports_the_holder_writes_nothing_and_unlock_breaks_the_lock() {
    let moto = Moto::start();
    let dir = stack();
    let (proxy, mut first) = apply_held_midway(&moto, dir.path(), "120");
    let before = functions(&moto).await;

    let second = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(second.status.code(), Some(1), "{}", stdout(&second));
    let message = stderr(&second);
    assert!(message.contains("stack `locked` is locked"), "{message}");
    assert!(
        message.contains("is running `scar apply` since"),
        "{message}"
    );
    assert!(message.contains("scar unlock . "), "{message}");
    assert_eq!(
        functions(&moto).await,
        before,
        "the second apply wrote nothing"
    );
    // A plan never takes the lock.
    ok(&moto.scar(dir.path(), &["plan", "."]));

    // The holder dies; its lease would hold for two minutes: break it with the id given.
    let _ = first.kill();
    let _ = first.wait();
    drop(proxy);
    let id = message
        .split("scar unlock . ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next())
        .expect("a lock id in the message")
        .to_owned();
    let wrong = moto.scar(dir.path(), &["unlock", ".", "0000000000000000"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains(&id), "{}", stderr(&wrong));
    let unlock = moto.scar(dir.path(), &["unlock", ".", &id]);
    ok(&unlock);
    assert!(stdout(&unlock).contains("Broke the lock of stack `locked`"));

    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(functions(&moto).await, ["one", "two"], "each function once");
    assert_eq!(
        moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"])
            .status
            .code(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_holders_lease_runs_out_and_is_taken_over() {
    let moto = Moto::start();
    let dir = stack();
    let (proxy, mut first) = apply_held_midway(&moto, dir.path(), "2");
    let _ = first.kill();
    let _ = first.wait();
    drop(proxy);
    // Still within the lease: refused.
    let early = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(early.status.code(), Some(1), "{}", stderr(&early));
    std::thread::sleep(Duration::from_millis(2100));
    let late = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&late);
    assert!(
        stderr(&late).contains("took over a lock whose lease ran out"),
        "{}",
        stderr(&late)
    );
    assert_eq!(functions(&moto).await, ["one", "two"]);
    // Released at the end: the next writer takes it at once.
    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
}
