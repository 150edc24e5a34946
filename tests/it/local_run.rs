//! `scar invoke --local` and `scar run --local` from the command line: a three-stage workflow
//! on a base with no C library, each stage in its own image, against moto's S3; a failing
//! stage, a timeout, and a script that tries to get out of its sandbox.

use std::path::Path;

use serde_json::Value;

use crate::runtime::push_busybox_base;
use crate::support::moto::{Moto, buckets, scar_command};
use crate::support::{ok, stderr, stdout};

const STACK: &str = "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: localwf\nspec:\n  region: us-east-1\n  role:\n    managed: true\n";

/// A function `name` on `image` reading `input` (bucket/prefix) and writing to `output`.
fn function(
    dir: &Path,
    image: &str,
    name: &str,
    input: (&str, &str),
    output: (&str, &str),
    script: &str,
    timeout: u32,
) {
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!(
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  image: {image}\n  script: {name}.sh\n  timeout: {timeout}\n  timeoutThreshold: 1\n  environment:\n    STAGE: {name}\n  input:\n    - bucket: {}\n      prefix: {}\n  output:\n    - bucket: {}\n      prefix: {}\n",
            input.0, input.1, output.0, output.1
        ),
    )
    .expect("function");
    std::fs::write(dir.join(format!("{name}.sh")), script).expect("script");
}

async fn object(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<String> {
    let got = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = got.body.collect().await.ok()?.into_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Each stage appends its name to the file it got (stage one upper-cases it first).
const APPEND: &str = "name=$(basename \"$INPUT_FILE_PATH\")\n{ cat \"$INPUT_FILE_PATH\"; echo \"$STAGE\"; } > \"$TMP_OUTPUT_DIR/$name\"\necho \"$STAGE ran on $name\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_three_stage_workflow_runs_here_each_stage_in_its_own_image() {
    let moto = Moto::start();
    let base = push_busybox_base();
    let client = buckets(&moto, &["wf-a", "wf-out"]).await;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), STACK).expect("stack");
    let one = "name=$(basename \"$INPUT_FILE_PATH\")\ntr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$name\"\n";
    function(d, &base, "one", ("wf-a", "in/"), ("wf-a", "mid/"), one, 30);
    function(
        d,
        &base,
        "two",
        ("wf-a", "mid/"),
        ("wf-a", "late/"),
        APPEND,
        30,
    );
    function(
        d,
        &base,
        "three",
        ("wf-a", "late/"),
        ("wf-out", "done/"),
        APPEND,
        30,
    );
    std::fs::write(d.join("note.txt"), "hello local\n").expect("input");
    std::fs::write(
        d.join("shout.yaml"),
        format!("apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: shout\nspec:\n  image: {base}\n  script: shout.sh\n  http:\n    name: shout\n    stage: scar\n"),
    )
    .expect("http function");
    std::fs::write(d.join("shout.sh"), "tr a-z A-Z < \"$INPUT_FILE_PATH\"\n").expect("script");

    let run = moto.scar(d, &["run", ".", "--local", "--input", "note.txt"]);
    ok(&run);
    let out = stdout(&run);
    // The tree: one started two, which started three; three's output starts nothing.
    assert!(out.contains("#1 one <- s3://wf-a/in/note.txt  ok"), "{out}");
    assert!(
        out.contains("└─ #2 two <- s3://wf-a/mid/note.txt  ok"),
        "{out}"
    );
    assert!(
        out.contains("└─ #3 three <- s3://wf-a/late/note.txt  ok"),
        "{out}"
    );
    assert!(
        out.contains("3 invocations: 3 succeeded, 0 failed"),
        "{out}"
    );
    assert_eq!(
        object(&client, "wf-out", "done/note.txt").await.as_deref(),
        Some("HELLO LOCAL\ntwo\nthree\n"),
        "{}",
        stderr(&run)
    );
    // Three images: each stage's own layer on the shared base.
    let roots = std::fs::read_dir(crate::support::registry::cache_dir().join("rootfs"))
        .expect("rootfs cache")
        .count();
    assert!(roots >= 3, "{roots}");

    // One function on its own, as `scar invoke` prints a remote one.
    let inv = moto.scar(
        d,
        &[
            "invoke",
            ".",
            "two",
            "--local",
            "--input",
            "s3://wf-a/mid/note.txt",
        ],
    );
    ok(&inv);
    let answer: Value = serde_json::from_str(&stdout(&inv)).expect("JSON answer");
    assert_eq!(answer["ok"], true, "{answer:#}");
    assert_eq!(
        answer["results"][0]["uploaded"][0],
        "s3://wf-a/late/note.txt"
    );
    let log = stderr(&inv);

    // An HTTP function gets the request its endpoint would send; its answer's body is bytes.
    let http = moto.scar(
        d,
        &[
            "invoke",
            ".",
            "shout",
            "--local",
            "--data",
            "note.txt",
            "-o",
            "shouted.txt",
        ],
    );
    ok(&http);
    assert!(stderr(&http).contains("HTTP 200"), "{}", stderr(&http));
    assert_eq!(
        std::fs::read_to_string(d.join("shouted.txt"))
            .ok()
            .as_deref(),
        Some("HELLO LOCAL\n")
    );
    assert!(
        log.contains("two ran on note.txt") && log.contains("REPORT RequestId: "),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_stage_a_timeout_and_an_escape_attempt_are_reported_and_contained() {
    let moto = Moto::start();
    let base = push_busybox_base();
    let client = buckets(&moto, &["wf2"]).await;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), STACK).expect("stack");
    function(
        d,
        &base,
        "first",
        ("wf2", "in/"),
        ("wf2", "mid/"),
        APPEND,
        30,
    );
    function(
        d,
        &base,
        "broken",
        ("wf2", "mid/"),
        ("wf2", "never/"),
        "echo \"cannot read $INPUT_FILE_PATH\" >&2\necho second line >&2\nexit 3\n",
        30,
    );
    function(
        d,
        &base,
        "slow",
        ("wf2", "slow/"),
        ("wf2", "slow-out/"),
        "sleep 622\n",
        3,
    );
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let marker = Path::new(&home).join(format!(".scar-escape-{}", std::process::id()));
    // The root file systems scar unpacked, which every run after this one runs (the cache is
    // shared by the tests: the name is this run's own).
    let rootfs = crate::support::registry::cache_dir().join("rootfs");
    let planted = format!("planted-{}", std::process::id());
    let escape = format!(
        "for p in /opt/scar/x /bin/x /srv/escape/x {home}/x {marker}; do touch \"$p\" 2>/dev/null && echo \"wrote $p\" || echo \"refused $p\"; done\n\
         for p in /proc/[0-9]*; do touch \"$p/root{marker}\" 2>/dev/null && echo \"wrote through $p\"; ls \"$p/root{home}\" >/dev/null 2>&1 && echo \"home through $p\"; \
           for r in $p/root{rootfs}/*/bin; do touch \"$r/{planted}\" 2>/dev/null && echo \"planted through $p\"; done; done\n\
         mount -o remount,rw / 2>/dev/null && echo remounted\n\
         mount -o remount,bind,rw / 2>/dev/null && echo remounted\n\
         ls {home} 2>/dev/null | head -3 | sed 's/^/home: /'\n\
         touch /tmp/ok && echo tmp-ok\n\
         touch \"$TMP_OUTPUT_DIR/ok\" && echo output-ok\n\
         sleep 633 &\n\
         echo left-a-process\n",
        marker = marker.display(),
        rootfs = rootfs.display(),
    );
    function(
        d,
        &base,
        "escape",
        ("wf2", "esc/"),
        ("wf2", "esc-out/"),
        &escape,
        30,
    );
    std::fs::write(d.join("a.txt"), "a\n").expect("input");

    // A failing stage: the run goes on with what it can, names the function, the input and the
    // end of its stderr, and exits 1.
    let run = moto.scar(d, &["run", ".", "first", "--local", "--input", "a.txt"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let out = stdout(&run);
    assert!(out.contains("#1 first <- s3://wf2/in/a.txt  ok"), "{out}");
    assert!(
        out.contains("#2 broken <- s3://wf2/mid/a.txt  FAILED"),
        "{out}"
    );
    assert!(
        out.contains("failed: #2 broken on s3://wf2/mid/a.txt: the script exited with status 3"),
        "{out}"
    );
    assert!(
        out.contains("  | cannot read /tmp/") && out.contains("  | second line"),
        "{out}"
    );
    assert_eq!(
        object(&client, "wf2", "mid/a.txt").await.as_deref(),
        Some("a\nfirst\n")
    );

    // A timeout: ended at the function's timeout, nothing left running.
    let started = std::time::Instant::now();
    let slow = moto.scar(d, &["invoke", ".", "slow", "--local"]);
    assert_eq!(slow.status.code(), Some(1));
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    let said = stderr(&slow);
    assert!(
        said.contains("the function failed: the script ran out of time"),
        "{said}"
    );

    // An escape attempt, under bubblewrap and under scar's own launcher (issue 23, finding 2:
    // under `unshare` the host's shell was PID 1 and /proc/1/root was the host's `/`): writes
    // outside /tmp and $TMP_OUTPUT_DIR fail, through any process's root too; the root stays
    // read-only; the host's home and scar's rootfs cache are not there; and the process it
    // leaves behind goes with the sandbox.
    for sandbox in ["bwrap", "builtin"] {
        let esc = scar_command(&moto.endpoint, d, &["invoke", ".", "escape", "--local"])
            .env("SCAR_SANDBOX", sandbox)
            .output()
            .expect("scar runs");
        ok(&esc);
        let log = stderr(&esc);
        for p in ["/opt/scar/x", "/bin/x", "/srv/escape/x"] {
            assert!(
                log.contains(&format!("refused {p}")),
                "{sandbox}: {p}: {log}"
            );
        }
        assert!(
            log.contains(&format!("refused {}", marker.display())),
            "{sandbox}: {log}"
        );
        for escaped in [
            "wrote through",
            "home through",
            "planted through",
            "remounted",
        ] {
            assert!(!log.contains(escaped), "{sandbox}: {escaped}: {log}");
        }
        assert!(!marker.exists(), "{sandbox}: the host's home changed");
        assert!(
            !log.contains("home: "),
            "{sandbox}: the host's home is visible: {log}"
        );
        assert!(
            log.contains("tmp-ok") && log.contains("output-ok"),
            "{sandbox}: {log}"
        );
        for pattern in ["sleep 633", "sleep 622"] {
            let left = std::process::Command::new("pgrep")
                .args(["-f", pattern])
                .output()
                .expect("pgrep");
            assert!(left.stdout.is_empty(), "{sandbox}: left behind: {pattern}");
        }
    }
    let written = std::fs::read_dir(&rootfs)
        .expect("the rootfs cache")
        .flatten()
        .any(|e| e.path().join("bin").join(&planted).exists());
    assert!(!written, "a function wrote into the rootfs cache");
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_jobs_run_here_as_their_job_command_and_delegated_work_follows() {
    let moto = Moto::start();
    let base = push_busybox_base();
    let failures = scar::model::failures::default_bucket("localwf", "us-east-1", None);
    let client = buckets(&moto, &["wf3", &failures]).await;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(
        d.join("stack.yaml"),
        format!("{STACK}  defaults:\n    batch:\n      compute:\n        type: EC2\n        maxVcpus: 4\n        subnets: [subnet-0a1b2c3d4e5f60718]\n        securityGroups: [sg-0a1b2c3d4e5f60718]\n"),
    )
    .expect("stack");
    function(
        d,
        &base,
        "prep",
        ("wf3", "in/"),
        ("wf3", "prepped/"),
        APPEND,
        30,
    );
    function(
        d,
        &base,
        "heavy",
        ("wf3", "prepped/"),
        ("wf3", "heavy/"),
        // Only a Batch job has a job id.
        &format!("[ -n \"$AWS_BATCH_JOB_ID\" ] || exit 9\n{APPEND}"),
        30,
    );
    // Lambda stops it at 2 s (timeout 3, threshold 1): the work is delegated, and the job,
    // which has no Lambda deadline, finishes it.
    let slow = format!("sleep 4\n{APPEND}");
    function(
        d,
        &base,
        "maybe",
        ("wf3", "heavy/"),
        ("wf3", "done/"),
        &slow,
        3,
    );
    for (name, mode) in [("heavy", "batch"), ("maybe", "lambda-batch")] {
        let path = d.join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).expect("manifest");
        std::fs::write(
            &path,
            text.replace("spec:\n", &format!("spec:\n  execution: {mode}\n")),
        )
        .expect("manifest");
    }
    std::fs::write(d.join("b.txt"), "b\n").expect("input");
    let run = moto.scar(d, &["run", ".", "--local", "--input", "b.txt", "--json"]);
    ok(&run);
    let report: Value = serde_json::from_str(&stdout(&run)).expect("JSON");
    assert_eq!(report["succeeded"], 3, "{report:#}\n{}", stderr(&run));
    assert_eq!(
        object(&client, "wf3", "done/b.txt").await.as_deref(),
        Some("b\nprep\nheavy\nmaybe\n")
    );
    let steps = report["invocations"].as_array().expect("invocations");
    assert_eq!(steps[2]["function"], "maybe");
    assert!(
        steps[2]["seconds"].as_f64().unwrap_or(0.0) >= 4.0,
        "{report:#}"
    );

    // Batch keeps the books too. `heavy`'s jobs run twice when the script exits 4 (its
    // retry strategy, run here as Batch runs it); a job that fails its last attempt writes
    // its failure record (the supervisor in the job does), a job whose second attempt works
    // leaves none, and `scar retry` submits the failed one again.
    let heavy = d.join("heavy.yaml");
    let text = std::fs::read_to_string(&heavy).expect("manifest");
    std::fs::write(
        &heavy,
        format!("{text}  batch:\n    retry:\n      attempts: 2\n      evaluateOnExit:\n        - onExitCode: \"4\"\n          action: retry\n"),
    )
    .expect("manifest");
    let picky = "case \"$(basename \"$INPUT_FILE_PATH\")\" in\n  bad*) echo \"heavy: cannot take it\" >&2; exit 4;;\n  flaky*) [ \"$AWS_BATCH_JOB_ATTEMPT\" = 2 ] || { echo \"heavy: not yet\" >&2; exit 4; };;\nesac\n";
    std::fs::write(d.join("heavy.sh"), format!("{picky}{APPEND}")).expect("script");
    std::fs::write(d.join("bad.txt"), "bad\n").expect("input");
    std::fs::write(d.join("flaky.txt"), "flaky\n").expect("input");
    let run = moto.scar(
        d,
        &[
            "run",
            ".",
            "--local",
            "--input",
            "bad.txt",
            "flaky.txt",
            "--json",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert_eq!(
        object(&client, "wf3", "done/flaky.txt").await.as_deref(),
        Some("flaky\nprep\nheavy\nmaybe\n"),
        "the second attempt worked"
    );
    let listed = moto.scar(d, &["failures", ".", "--json"]);
    ok(&listed);
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let found = listed["failures"].as_array().expect("failures");
    assert_eq!(
        found.len(),
        1,
        "only the job that failed for good: {listed:#}"
    );
    assert_eq!(found[0]["function"], "heavy");
    assert_eq!(found[0]["input"], "s3://wf3/prepped/bad.txt");
    assert_eq!(found[0]["attempts"], 2, "both of Batch's attempts");
    assert_eq!(found[0]["reason"], "exit status 4: heavy: cannot take it");
    assert!(
        found[0]["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("local-")),
        "the job's id: {listed:#}"
    );
    // Fixed, the failed input is submitted again, and its record goes.
    std::fs::write(d.join("heavy.sh"), APPEND).expect("script");
    let retried = moto.scar(d, &["retry", ".", "heavy", "--local"]);
    ok(&retried);
    assert_eq!(
        object(&client, "wf3", "done/bad.txt").await.as_deref(),
        Some("bad\nprep\nheavy\nmaybe\n")
    );
    let left = moto.scar(d, &["failures", ".", "--json"]);
    ok(&left);
    let left: Value = serde_json::from_str(&stdout(&left)).expect("JSON");
    assert_eq!(left["failures"], serde_json::json!([]), "{left:#}");

    // A function built for another architecture than this machine's, with no emulator: said.
    let arm = std::fs::read_to_string(d.join("prep.yaml")).expect("manifest");
    std::fs::write(
        d.join("prep.yaml"),
        arm.replace("spec:\n", "spec:\n  architecture: arm64\n"),
    )
    .expect("arm");
    let inv = moto.scar(d, &["invoke", ".", "prep", "--local"]);
    assert_eq!(inv.status.code(), Some(1));
    assert!(
        stderr(&inv).contains("is built for arm64; this machine is amd64"),
        "{}",
        stderr(&inv)
    );

    // A machine where the sandbox cannot be made (here: a bubblewrap that is refused its user
    // namespace, as where they are turned off) gets an error saying so, and nothing runs.
    let fake = tempfile::tempdir().expect("bin");
    let bwrap = fake.path().join("bwrap");
    std::fs::write(
        &bwrap,
        "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n",
    )
    .expect("fake bwrap");
    std::fs::set_permissions(&bwrap, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("mode");
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let refused = scar_command(&moto.endpoint, d, &["invoke", ".", "heavy", "--local"])
        .env("PATH", path)
        .env("SCAR_SANDBOX", "bwrap")
        .output()
        .expect("scar runs");
    assert_eq!(refused.status.code(), Some(1));
    let said = stderr(&refused);
    assert!(
        said.contains("this machine cannot make the sandbox a function runs in here")
            && said.contains("setting up uid map: Permission denied"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_run_here_gets_short_lived_credentials_unless_asked_otherwise() {
    // Regression (issue 23, finding 14): a local run handed the user's long-term keys to the
    // function, whose script (and anything the image runs) could keep them. Now it gets its
    // role's credentials (an hour of sts:AssumeRole) or short-lived ones of the user's; the
    // long-term keys only with `--credentials long-term`. The tests' keys are long-term
    // (`test`, no session token).
    let moto = Moto::start();
    let base = push_busybox_base();
    let _client = buckets(&moto, &["creds"]).await;
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), STACK).expect("stack");
    let whoami = "echo \"key=$AWS_ACCESS_KEY_ID session=${AWS_SESSION_TOKEN:+yes}\"\n";
    function(
        d,
        &base,
        "whoami",
        ("creds", "in/"),
        ("creds", "out/"),
        whoami,
        30,
    );
    // What the script printed (in the supervisor's log line).
    let key = |o: &std::process::Output| {
        stderr(o)
            .lines()
            .find_map(|l| l.split_once("key=").map(|(_, k)| k))
            .and_then(|k| k.split(" stream=").next())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    // Short-lived credentials of the user's. (moto answers sts:AssumeRole for any ARN, the role
    // existing or not and trusting the caller or not, so the fallback `auto` takes when the
    // role cannot be assumed is shown here by asking for it.)
    let session = moto.scar(
        d,
        &[
            "invoke",
            ".",
            "whoami",
            "--local",
            "--credentials",
            "session",
        ],
    );
    ok(&session);
    assert!(
        stderr(&session).contains("functions run here with short-lived credentials of yours"),
        "{}",
        stderr(&session)
    );
    assert!(
        !key(&session).starts_with("test ") && key(&session).ends_with("session=yes"),
        "{}",
        stderr(&session)
    );
    // Applied, the stack's managed role exists: the function runs with its credentials.
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    let role = moto.scar(d, &["invoke", ".", "whoami", "--local"]);
    ok(&role);
    assert!(
        stderr(&role).contains("with the credentials of their role arn:aws:iam::")
            && stderr(&role).contains(":role/scar-localwf-exec"),
        "{}",
        stderr(&role)
    );
    assert!(key(&role).ends_with("session=yes"), "{}", stderr(&role));
    assert_ne!(key(&role), key(&session));
    // Asked for: the user's own keys.
    let long = moto.scar(
        d,
        &[
            "invoke",
            ".",
            "whoami",
            "--local",
            "--credentials",
            "long-term",
        ],
    );
    ok(&long);
    assert_eq!(key(&long), "test session=", "{}", stderr(&long));
}

/// Counts the requests for each path, answering each with its count so far: how a script run
/// here learns that it runs an input again (the transient fault below), and how the test
/// learns how often each input was processed.
fn counter() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let seen = counts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let n = {
                let mut c = seen.lock().expect("counts");
                let n = c.entry(path).or_insert(0);
                *n += 1;
                *n
            };
            let body = n.to_string();
            let _ = write!(
                &stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, counts)
}

/// The loop the failure policy promises, here: 1,000 inputs through two stages, where the
/// first has a bug that fails 37 inputs every time, cannot handle 3 (corrupt), and fails 20
/// once (a transient fault). With `retryAttempts: 2` the 20 succeed on a retry; the 40 others
/// are recorded, each after 3 attempts, and `scar failures` lists exactly them. The script is
/// fixed; `scar retry --local` runs the 40 again: the 37 go through both stages, the 3 fail
/// again and are recorded again. Nothing that succeeded runs twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_inputs_failed_ones_recorded_and_retried_here_nothing_twice() {
    let moto = Moto::start();
    let base = push_busybox_base();
    let failures = scar::model::failures::default_bucket("localwf", "us-east-1", None);
    let client = buckets(&moto, &["htc", &failures]).await;
    let (port, counts) = counter();
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), STACK).expect("stack");
    let stage_one = |fixed: bool| {
        format!(
            "name=$(basename \"$INPUT_FILE_PATH\")\n\
             n=$(busybox wget -q -O- http://127.0.0.1:{port}/one/$name)\n\
             case \"$(cat \"$INPUT_FILE_PATH\")\" in\n\
               bug*) {bug} ;;\n\
               corrupt*) echo \"cannot decode $name\" >&2; exit 5 ;;\n\
               flaky*) [ \"$n\" -gt 1 ] || {{ echo \"transient fault on $name\" >&2; exit 6; }} ;;\n\
             esac\n\
             cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/$name\"\n",
            bug = if fixed {
                ":"
            } else {
                "echo \"bug on $name\" >&2; exit 4"
            }
        )
    };
    function(
        d,
        &base,
        "one",
        ("htc", "in/"),
        ("htc", "mid/"),
        &stage_one(false),
        30,
    );
    function(
        d,
        &base,
        "two",
        ("htc", "mid/"),
        ("htc", "out/"),
        &format!(
            "name=$(basename \"$INPUT_FILE_PATH\")\nbusybox wget -q -O- http://127.0.0.1:{port}/two/$name >/dev/null\ncp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/$name\"\n"
        ),
        30,
    );
    let one = std::fs::read_to_string(d.join("one.yaml")).expect("one");
    std::fs::write(
        d.join("one.yaml"),
        format!("{one}  onFailure:\n    retryAttempts: 2\n"),
    )
    .expect("one");
    let inputs = d.join("inputs");
    std::fs::create_dir(&inputs).expect("inputs");
    let kind = |i: usize| match i {
        0..37 => "bug",
        37..40 => "corrupt",
        40..60 => "flaky",
        _ => "fine",
    };
    for i in 0..1000 {
        std::fs::write(
            inputs.join(format!("f{i:04}.txt")),
            format!("{}\n", kind(i)),
        )
        .expect("input");
    }

    let run = moto.scar(
        d,
        &["run", ".", "one", "--local", "--input", "inputs", "--json"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let report: Value = serde_json::from_str(&stdout(&run)).expect("json");
    assert_eq!(report["failed"], 40, "{}", report["failed"]);
    assert_eq!(report["succeeded"], 960 + 960);

    let listed = moto.scar(d, &["failures", ".", "one", "--json"]);
    ok(&listed);
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("json");
    let mut failed: Vec<(String, u64, String)> = listed["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["input"].as_str().unwrap_or_default().to_owned(),
                f["attempts"].as_u64().unwrap_or_default(),
                f["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    failed.sort();
    assert_eq!(failed.len(), 40, "{failed:?}");
    for (i, (input, attempts, reason)) in failed.iter().enumerate() {
        let name = format!("f{i:04}.txt");
        assert_eq!(input, &format!("s3://htc/in/{name}"));
        assert_eq!(*attempts, 3, "{input}");
        let said = if i < 37 {
            "exit status 4: bug on"
        } else {
            "exit status 5: cannot decode"
        };
        assert_eq!(reason, &format!("{said} {name}"));
    }

    // Fixed, and retried here: the 37 go through, the 3 are recorded again.
    std::fs::write(d.join("one.sh"), stage_one(true)).expect("fixed");
    let dry = moto.scar(d, &["retry", ".", "one", "--dry-run"]);
    ok(&dry);
    assert!(
        stdout(&dry).contains("40 input(s) would be retried"),
        "{}",
        stdout(&dry)
    );
    let retried = moto.scar(d, &["retry", ".", "one", "--local"]);
    assert_eq!(retried.status.code(), Some(1), "{}", stderr(&retried));
    assert!(
        stdout(&retried).contains("40 input(s) retried: 37 succeeded, 3 failed again"),
        "{}",
        stdout(&retried)
    );
    let listed = moto.scar(d, &["failures", ".", "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("json");
    let mut left: Vec<&str> = listed["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter_map(|f| f["input"].as_str())
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        [
            "s3://htc/in/f0037.txt",
            "s3://htc/in/f0038.txt",
            "s3://htc/in/f0039.txt"
        ]
    );
    let outputs = client
        .list_objects_v2()
        .bucket("htc")
        .prefix("out/")
        .max_keys(1000)
        .send()
        .await
        .expect("outputs")
        .key_count()
        .unwrap_or_default();
    assert_eq!(outputs, 997);

    // Every stage-one run of each input, and every stage-two run: nothing processed twice.
    let counts = counts.lock().expect("counts").clone();
    for i in 0..1000 {
        let name = format!("f{i:04}.txt");
        let one = counts.get(&format!("/one/{name}")).copied().unwrap_or(0);
        let two = counts.get(&format!("/two/{name}")).copied().unwrap_or(0);
        let (want_one, want_two) = match kind(i) {
            "bug" => (3 + 1, 1),
            "corrupt" => (3 + 3, 0),
            "flaky" => (2, 1),
            _ => (1, 1),
        };
        assert_eq!((one, two), (want_one, want_two), "{name}");
    }

    // Run twice, `retry` finds only the 3, and leaves the rest alone.
    let again = moto.scar(d, &["retry", ".", "one", "--local"]);
    assert!(
        stdout(&again).contains("3 input(s) retried: 0 succeeded, 3 failed again"),
        "{}",
        stdout(&again)
    );
}

/// A queued input's books, here: each event runs as its queue's mapping runs it (an SQS
/// message, received up to `maxReceives` times), one that fails every time goes to the
/// dead-letter queue, where `scar failures` lists it; once the script is fixed, `scar retry
/// --local` runs it and takes it off. (The queues are made here as `scar apply` names them:
/// the test applies nothing.)
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_input_fails_into_its_dead_letter_queue_and_is_retried_here() {
    let moto = Moto::start();
    let base = push_busybox_base();
    let client = buckets(&moto, &["qin"]).await;
    let (port, counts) = counter();
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    std::fs::write(d.join("stack.yaml"), STACK).expect("stack");
    let script = |fixed: bool| {
        format!(
            "name=$(basename \"$INPUT_FILE_PATH\")\n\
             n=$(busybox wget -q -O- http://127.0.0.1:{port}/one/$name)\n\
             case \"$(cat \"$INPUT_FILE_PATH\")\" in\n\
               bad*) {bad} ;;\n\
               flaky*) [ \"$n\" -gt 1 ] || {{ echo \"transient fault on $name\" >&2; exit 6; }} ;;\n\
             esac\n\
             cp \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/$name\"\n",
            bad = if fixed {
                ":"
            } else {
                "echo \"bad $name\" >&2; exit 4"
            }
        )
    };
    function(
        d,
        &base,
        "one",
        ("qin", "in/"),
        ("qin", "out/"),
        &script(false),
        30,
    );
    let one = std::fs::read_to_string(d.join("one.yaml")).expect("one");
    std::fs::write(
        d.join("one.yaml"),
        one.replace(
            "      prefix: in/\n",
            "      prefix: in/\n      queue:\n        maxReceives: 2\n",
        ),
    )
    .expect("one");
    let input = scar::manifest::types::S3Input {
        bucket: "qin".into(),
        prefix: Some("in/".into()),
        suffix: None,
        events: None,
        queue: Some(Default::default()),
    };
    let dlq = format!(
        "{}-dlq",
        scar::model::queues::queue_name("localwf", "one", &input)
    );
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk().await);
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq)
        .send()
        .await
        .expect("the dead-letter queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let inputs = d.join("inputs");
    std::fs::create_dir(&inputs).expect("inputs");
    for (name, body) in [("a.txt", "fine"), ("b.txt", "bad"), ("c.txt", "flaky")] {
        std::fs::write(inputs.join(name), format!("{body}\n")).expect("input");
    }

    let run = moto.scar(
        d,
        &["run", ".", "one", "--local", "--input", "inputs", "--json"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let report: Value = serde_json::from_str(&stdout(&run)).expect("json");
    assert_eq!(
        (report["failed"].as_u64(), report["succeeded"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    let bodies: Vec<Value> = dead
        .messages()
        .iter()
        .filter_map(|m| serde_json::from_str(m.body()?).ok())
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["Records"][0]["s3"]["object"]["key"], "in/b.txt");

    let listed = moto.scar(d, &["failures", ".", "one", "--json"]);
    ok(&listed);
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("json");
    let failures = listed["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{listed}");
    assert_eq!(failures[0]["input"], "s3://qin/in/b.txt");
    assert_eq!(failures[0]["attempts"], 2);
    assert_eq!(failures[0]["condition"], "DeadLettered");

    std::fs::write(d.join("one.sh"), script(true)).expect("fixed");
    let retried = moto.scar(d, &["retry", ".", "one", "--local"]);
    ok(&retried);
    assert!(
        stdout(&retried).contains("1 input(s) retried: 1 succeeded"),
        "{}{}",
        stdout(&retried),
        stderr(&retried)
    );
    let listed = moto.scar(d, &["failures", ".", "one"]);
    ok(&listed);
    assert!(
        stdout(&listed).contains("no failed inputs"),
        "{}",
        stdout(&listed)
    );
    for name in ["a.txt", "b.txt", "c.txt"] {
        assert!(
            object(&client, "qin", &format!("out/{name}"))
                .await
                .is_some(),
            "{name}"
        );
    }
    // Received as often as the queue allows, and no more: a once, c twice (a transient
    // fault), b twice and once more in the retry.
    let counts = counts.lock().expect("counts").clone();
    let n = |name: &str| counts.get(&format!("/one/{name}")).copied().unwrap_or(0);
    assert_eq!((n("a.txt"), n("b.txt"), n("c.txt")), (1, 3, 2));
}
