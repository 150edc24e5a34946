//! The stack lock against moto: two applies at once (one holds the lock, the other reports
//! the holder and writes nothing), `scar unlock` with the id the message gives, a crashed
//! holder's lease taken over once it ran out, and `plan` never taking the lock.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::moto::{Moto, scar_command};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{ok, stderr, stdout};

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

/// A stack of `n` functions, so an apply takes a while.
fn long_stack(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("stack.yaml"), STACK).expect("write");
    for i in 0..n {
        std::fs::write(
            dir.path().join(format!("f{i}.yaml")),
            format!(
                "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: f{i}\nspec:\n  image: grycap/cowsay\n"
            ),
        )
        .expect("write");
    }
    dir
}

/// The lock object's key, as the proxy logs its writes.
const LOCK_KEY: &str = "/locks/locked.json";

#[tokio::test(flavor = "multi_thread")]
async fn lock_lost_answer_to_the_first_put_is_our_own_lock() {
    let moto = Moto::start();
    let dir = stack();
    // The first conditional put goes through; its answer is lost; the retry finds the object.
    let proxy = Proxy::start(moto.port(), Fault::DropAnswer(LOCK_KEY, 1));
    let apply = moto.scar_via(
        &proxy.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve"],
    );
    assert!(
        proxy.hanging.load(Ordering::SeqCst),
        "no answer was dropped"
    );
    ok(&apply);
    assert_eq!(functions(&moto).await, ["one", "two"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_lost_answer_to_a_renewal_keeps_the_lock() {
    let moto = Moto::start();
    let dir = long_stack(4);
    // The second put of the lock object is the first renewal: it goes through, its answer is
    // lost, and the retry's 412 is our own record.
    let proxy = Proxy::start(moto.port(), Fault::DelayAndDropAnswer(60, LOCK_KEY, 2));
    let apply = scar_command(
        &proxy.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve", "--parallelism", "1"],
    )
    .env("SCAR_LOCK_LEASE", "6")
    .output()
    .expect("scar runs");
    assert!(
        proxy.hanging.load(Ordering::SeqCst),
        "the apply ended before its first renewal"
    );
    ok(&apply);
    assert_eq!(functions(&moto).await.len(), 4);
    // And it was released at the end.
    let s3 = support::moto::s3(&moto.sdk().await);
    let left = s3
        .get_object()
        .bucket("scar-locks-123456789012-us-east-1")
        .key("locks/locked.json")
        .send()
        .await;
    assert!(left.is_err(), "the lock was left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_broken_by_unlock_stops_the_holder() {
    let moto = Moto::start();
    let dir = long_stack(8);
    let proxy = Proxy::start(moto.port(), Fault::Delay(60));
    let holder = scar_command(
        &proxy.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve", "--parallelism", "1"],
    )
    .env("SCAR_LOCK_LEASE", "3")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("scar starts");
    let s3 = support::moto::s3(&moto.sdk().await);
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let got = s3
            .get_object()
            .bucket("scar-locks-123456789012-us-east-1")
            .key("locks/locked.json")
            .send()
            .await;
        if let Ok(o) = got {
            let bytes = o.body.collect().await.expect("body").into_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("a lock record");
            break v["id"].as_str().expect("id").to_owned();
        }
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Break the lock while the apply runs (its images, then its functions, take seconds).
    ok(&moto.scar(dir.path(), &["unlock", ".", &id]));
    let out = holder.wait_with_output().expect("the holder ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("lock was lost"), "{err}");
    assert!(
        functions(&moto).await.len() < 8,
        "the holder kept starting steps after its lock was broken"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_expiry_uses_the_local_clock() {
    // A crashed holder whose clock ran a day ahead: its record says the lease runs for a day,
    // but it holds a 1 s lease, last written (by S3's clock) two seconds ago. By S3's clock it
    // has run out, and the next writer takes the lock over.
    let moto = Moto::start();
    let dir = stack();
    ok(&moto.scar(dir.path(), &["plan", "."]));
    let config = moto.sdk().await;
    let s3 = support::moto::s3(&config);
    let bucket = "scar-locks-123456789012-us-east-1";
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 86_400;
    let record = serde_json::json!({
        "id": "00000000000000aa",
        "stack": "locked",
        "holder": "ci@skewed-clock",
        "pid": 1,
        "operation": "apply",
        "started": ahead,
        "expires": ahead + 1,
        "version": "0.1.0",
        "lease_secs": 1,
    });
    s3.put_object()
        .bucket(bucket)
        .key("locks/locked.json")
        .body(record.to_string().into_bytes().into())
        .send()
        .await
        .expect("a skewed lock record");
    std::thread::sleep(Duration::from_millis(2100));
    let apply = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&apply);
    assert!(
        stderr(&apply).contains("took over a lock whose lease ran out"),
        "{}",
        stderr(&apply)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_timeout_waits_for_the_holder_then_goes_on_or_gives_up() {
    let moto = Moto::start();
    let dir = stack();
    let (proxy, mut first) = apply_held_midway(&moto, dir.path(), "120");

    // Held longer than the wait: it says whom it waits for, then gives up, having written
    // nothing.
    let started = Instant::now();
    let gave_up = moto.scar(
        dir.path(),
        &["apply", ".", "--auto-approve", "--lock-timeout", "2s"],
    );
    assert_eq!(gave_up.status.code(), Some(1));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let said = stderr(&gave_up);
    assert!(
        said.contains("waiting up to 2s for the lock of stack `locked`"),
        "{said}"
    );
    assert!(said.contains("is running `scar apply` since"), "{said}");
    let id = said
        .split("scar unlock . ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next())
        .expect("a lock id in the message")
        .to_owned();

    // Released while it waits: it takes the lock and applies.
    let mut waiting = scar_command(
        &moto.endpoint,
        dir.path(),
        &["apply", ".", "--auto-approve", "--lock-timeout", "60s"],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("scar starts");
    std::thread::sleep(Duration::from_secs(3));
    assert!(waiting.try_wait().expect("status").is_none(), "it waits");
    let _ = first.kill();
    let _ = first.wait();
    drop(proxy);
    ok(&moto.scar(dir.path(), &["unlock", ".", &id]));
    let status = waiting.wait().expect("the waiting apply ends");
    assert!(status.success(), "{status:?}");
    assert_eq!(functions(&moto).await, ["one", "two"]);
}
