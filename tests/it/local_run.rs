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
    let client = buckets(&moto, &["wf3"]).await;
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
