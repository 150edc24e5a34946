//! The runtime proven by running it: a function on a base image with no C library at all
//! (Debian's busybox-static), assembled and pushed by `scar apply` against moto and a real
//! registry, pulled back with skopeo, unpacked layer by layer (whiteouts honoured) into a root
//! file system, and its entrypoint run read-only in a user, mount and PID namespace
//! (bubblewrap), with its real Lambda Runtime API loop against an independent Runtime API
//! (cargo-lambda's emulator); an S3 event from moto makes the output object appear in moto.
//! Also: the aarch64 supervisor is a static aarch64 program, and runs an event under
//! qemu-user-static.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::lambda::RuntimeApi;
use crate::support::moto::{Moto, s3};
use crate::support::registry::{MOTO_ECR, push_image, shared};
use crate::support::rootfs::{Entry, layer, unpack};
use crate::support::{ok, stderr};

/// Debian's static busybox (`busybox-static`), checked to ask for no program interpreter.
fn busybox() -> Vec<u8> {
    let bytes = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (apt-get install busybox-static; scripts/test.sh does)");
    let (machine, interp) = scar::image::supervisor::program_interpreter(&bytes).expect("an ELF");
    assert_eq!(
        (machine, interp),
        (0x3e, None),
        "busybox-static is a static x86_64 program"
    );
    bytes
}

/// A base image with no C library: busybox and its applet links in one layer; a second layer
/// that whites out a file and makes a folder opaque, a hard link, and a link pointing far
/// above the root.
pub(crate) fn push_busybox_base() -> String {
    let mut bottom = vec![
        Entry::file("bin/busybox", &busybox(), 0o755),
        Entry::file("etc/motd", b"lower layer\n", 0o644),
        Entry::file("srv/old/a.txt", b"lower\n", 0o644),
        Entry::file("srv/keep.txt", b"kept\n", 0o644),
    ];
    for applet in [
        "sh", "cat", "tr", "basename", "wc", "ls", "echo", "mkdir", "cp", "sleep", "touch", "head",
        "sed",
    ] {
        bottom.push(Entry::Symlink(format!("bin/{applet}"), "busybox".into()));
    }
    let top = vec![
        Entry::Whiteout("etc/motd".into()),
        Entry::Opaque("srv/old".into()),
        Entry::file("srv/old/b.txt", b"upper\n", 0o644),
        Entry::Hardlink("srv/keep-link.txt".into(), "srv/keep.txt".into()),
        Entry::Symlink("srv/escape".into(), "/../../etc".into()),
    ];
    push_image(
        shared(),
        "base/busybox",
        "1.35",
        "amd64",
        &[layer(&bottom), layer(&top)],
        json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]}),
    )
}

fn write_stack(dir: &Path, image: &str) {
    std::fs::write(
        dir.join("stack.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: rtbox\nspec:\n  region: us-east-1\n  role:\n    managed: true\n",
    )
    .expect("stack");
    std::fs::write(
        dir.join("upper.yaml"),
        format!(
            "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: upper\nspec:\n  image: {image}\n  script: upper.sh\n  environment:\n    GREETING: hello\n  input:\n    - bucket: rt-in\n      prefix: in/\n  output:\n    - bucket: rt-out\n      prefix: out/\n"
        ),
    )
    .expect("function");
    std::fs::write(
        dir.join("upper.sh"),
        "name=$(basename \"$INPUT_FILE_PATH\")\ntr a-z A-Z < \"$INPUT_FILE_PATH\" > \"$TMP_OUTPUT_DIR/$name.up\"\necho \"$GREETING from $(cat /srv/old/b.txt)\"\nls /srv/old\n",
    )
    .expect("script");
}

/// The function's Lambda environment and image, as moto holds them.
async fn deployed(moto: &Moto) -> (Vec<(String, String)>, String) {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let f = lambda
        .get_function()
        .function_name("upper")
        .send()
        .await
        .expect("the function exists");
    let env = f
        .configuration()
        .and_then(|c| c.environment())
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let uri = f
        .code()
        .and_then(|c| c.image_uri())
        .expect("an image")
        .to_owned();
    (env, uri)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_on_a_base_with_no_c_library_handles_an_s3_event_in_its_unpacked_image() {
    let moto = Moto::start();
    let base = push_busybox_base();
    let dir = tempfile::tempdir().expect("tempdir");
    write_stack(dir.path(), &base);
    let apply = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&apply);

    // The image Lambda would pull, from the registry standing in for ECR.
    let (function_env, uri) = deployed(&moto).await;
    let image = uri.replace(MOTO_ECR, &shared().host());
    let (root, config) = unpack(&image);
    let root = root.path();
    assert!(
        !root.join("lib").exists() && !root.join("usr/lib").exists(),
        "no C library"
    );
    assert!(
        !root.join("etc/motd").exists(),
        "the whiteout hid the lower layer's file"
    );
    assert!(
        !root.join("srv/old/a.txt").exists(),
        "the opaque folder hid the lower layer's"
    );
    assert!(root.join("srv/old/b.txt").exists());
    assert_eq!(
        std::fs::read(root.join("srv/keep-link.txt")).ok(),
        Some(b"kept\n".to_vec())
    );
    assert_eq!(
        std::fs::read_link(root.join("srv/escape")).ok(),
        Some(Path::new("/../../etc").to_path_buf()),
        "a link is kept as written: it resolves inside the root the sandbox makes"
    );
    let entrypoint: Vec<String> =
        serde_json::from_value(config["config"]["Entrypoint"].clone()).expect("an entrypoint");
    assert_eq!(entrypoint, ["/opt/scar/bin/scar-supervisor"]);

    // The input, and the sandbox: the image read-only as root, Lambda's /tmp, /dev and /proc,
    // the function's environment plus what Lambda sets, nothing of the host's.
    let client = s3(&moto.sdk().await);
    client
        .put_object()
        .bucket("rt-in")
        .key("in/note one.txt")
        .body(b"from moto\n".to_vec().into())
        .send()
        .await
        .expect("input");
    let api = RuntimeApi::start("upper");
    let mut sandbox = Command::new("bwrap");
    sandbox
        .arg("--bind")
        .arg(root)
        .arg("/")
        .args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"])
        .args(["--remount-ro", "/"])
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
        ])
        .args(["--die-with-parent", "--clearenv"]);
    let image_env: Vec<String> =
        serde_json::from_value(config["config"]["Env"].clone()).unwrap_or_default();
    let mut vars: Vec<(String, String)> = image_env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    vars.extend(function_env);
    vars.extend(api.lambda_env().into_iter().map(|(k, v)| (k.to_owned(), v)));
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("SCAR_LOG", "debug"),
    ] {
        vars.push((k.to_owned(), v.to_owned()));
    }
    for (k, v) in &vars {
        sandbox.arg("--setenv").arg(k).arg(v);
    }
    let log = tempfile::NamedTempFile::new().expect("log");
    let append = || {
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .expect("log")
    };
    let mut child = sandbox
        .arg("--")
        .args(&entrypoint)
        .stdin(Stdio::null())
        .stdout(append())
        .stderr(append())
        .spawn()
        .expect("bwrap runs (apt-get install bubblewrap; scripts/test.sh does)");

    // Started, or the log says why not.
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(log.path())
        .unwrap_or_default()
        .contains("scar-supervisor starting")
    {
        if child.try_wait().ok().flatten().is_some() || started.elapsed().as_secs() > 30 {
            let _ = child.kill();
            panic!(
                "the supervisor did not start in the sandbox:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let event = json!({"Records": [{"eventSource": "aws:s3",
        "s3": {"bucket": {"name": "rt-in"}, "object": {"key": "in/note+one.txt"}}}]});
    let (status, answer) = api.invoke(event.to_string().as_bytes());
    let answer: Value = serde_json::from_slice(&answer)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer).into_owned()));
    // A queued input's SQS messages: the invocation succeeds, and names the one message
    // whose object could not be processed, for the event source mapping to put back.
    let message = |id: &str, key: &str| {
        json!({"messageId": id, "eventSource": "aws:sqs", "receiptHandle": "r",
            "body": json!({"Records": [{"eventSource": "aws:s3",
                "s3": {"bucket": {"name": "rt-in"}, "object": {"key": key}}}]}).to_string()})
    };
    let sqs =
        json!({"Records": [message("m-ok", "in/note+one.txt"), message("m-gone", "in/gone.txt")]});
    let (sqs_status, sqs_answer) = api.invoke(sqs.to_string().as_bytes());
    // A failing call-time script fails the invocation, as Lambda sees it.
    let (failed_status, failed) = api.invoke(br#"{"script": "echo boom >&2; exit 3"}"#);
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert_eq!(status, 200, "{answer:#}\n{log}");
    assert_eq!(answer["ok"], true, "{answer:#}\n{log}");
    let got = client
        .get_object()
        .bucket("rt-out")
        .key("out/note one.txt.up")
        .send()
        .await
        .expect("the output object is in moto");
    let got = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(got.as_ref(), b"FROM MOTO\n");
    assert!(
        log.contains("hello from upper"),
        "the script ran in the image:\n{log}"
    );
    assert_eq!(sqs_status, 200, "{}", String::from_utf8_lossy(&sqs_answer));
    let sqs_answer: Value = serde_json::from_slice(&sqs_answer).expect("an answer");
    assert_eq!(
        sqs_answer["batchItemFailures"],
        json!([{"itemIdentifier": "m-gone"}]),
        "{sqs_answer:#}"
    );
    assert!(failed_status >= 400, "{failed_status}");
    let failed: Value = serde_json::from_slice(&failed).expect("an error document");
    assert_eq!(failed["errorType"], "ScarInvocationFailed", "{failed:#}");
    assert!(
        failed["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("boom")),
        "{failed:#}"
    );
}

#[test]
fn the_aarch64_supervisor_is_static_and_handles_an_event_under_qemu() {
    let bin = support::supervisor::binary("arm64");
    let bytes = std::fs::read(&bin).expect("read");
    assert_eq!(
        scar::image::supervisor::program_interpreter(&bytes),
        Ok((0xb7, None)),
        "an aarch64 ELF with no program interpreter"
    );
    let Ok(qemu) = which("qemu-aarch64-static") else {
        eprintln!("qemu-aarch64-static is not installed: only the header was checked");
        return;
    };
    let version = Command::new(&qemu)
        .arg(&bin)
        .arg("--version")
        .output()
        .expect("qemu runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("scar-supervisor {}", env!("CARGO_PKG_VERSION"))
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("event.json"), r#"{"data": "YWFyY2g2NA=="}"#).expect("event");
    std::fs::write(
        dir.path().join("function.json"),
        json!({"stack": "s", "function": "f", "timeout_threshold": 1, "timeout": 60,
               "script": "tr a-z A-Z < \"$INPUT_FILE_PATH\"; echo; uname -m"})
        .to_string(),
    )
    .expect("config");
    let o = Command::new(&qemu)
        .arg(&bin)
        .args(["--event", "event.json", "--config", "function.json"])
        .current_dir(dir.path())
        .env("AWS_REGION", "us-east-1")
        .env_remove("SCAR_CONFIG")
        .output()
        .expect("qemu runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("AARCH64"),
        "the script ran: {}",
        stderr(&o)
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// The static supervisor running its Lambda loop on this machine against `api`, with the
/// configuration of `config` (a `scar image config` JSON).
fn lambda_supervisor(api: &RuntimeApi, config: &Value) -> std::process::Child {
    use base64::Engine as _;
    let mut c = Command::new(support::supervisor::binary("amd64"));
    support::supervisor::aws_env(&mut c, "http://127.0.0.1:9");
    c.envs(api.lambda_env())
        .env(
            "SCAR_CONFIG",
            base64::engine::general_purpose::STANDARD.encode(config.to_string()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("scar-supervisor starts")
}

#[test]
fn scar_invoke_carries_every_byte_value_and_a_call_time_script_with_arguments() {
    let stack = support::supervisor::Stack::new("");
    stack.function("echo", "  http: {}\n", "cat \"$INPUT_FILE_PATH\"\n");
    let api = RuntimeApi::start("echo");
    let mut child = lambda_supervisor(&api, &stack.config("echo"));
    let gateway = support::lambda::ApiGateway::start(&api);
    let dir = stack.dir.path();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(256 * 40).collect();
    std::fs::write(dir.join("all.bin"), &bytes).expect("write");
    let scar = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_scar"));
        support::supervisor::aws_env(&mut c, &api.endpoint());
        c.args(args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("scar runs")
    };

    // Over HTTP: the request's bytes in, the script's bytes out, written as they are.
    let o = scar(&[
        "invoke",
        ".",
        "echo",
        "--url",
        &gateway.url,
        "--data",
        "all.bin",
        "-o",
        "got.bin",
    ]);
    ok(&o);
    assert!(
        std::fs::read(dir.join("got.bin")).expect("got.bin") == bytes,
        "every byte value back"
    );
    let o = scar(&[
        "invoke",
        ".",
        "echo",
        "--url",
        &gateway.url,
        "--data",
        "all.bin",
    ]);
    ok(&o);
    assert!(o.stdout == bytes, "to stdout as well");

    // A call-time script and arguments go in a direct invocation, through the Lambda API.
    std::fs::write(
        dir.join("check.sh"),
        "[ \"$1\" = a ] && [ \"$2\" = 'b c' ] || exit 3\n[ \"$(wc -c < \"$INPUT_FILE_PATH\")\" -eq 10240 ] || exit 4\n",
    )
    .expect("write");
    let o = scar(&[
        "invoke", ".", "echo", "--data", "all.bin", "--script", "check.sh", "--", "a", "b c",
    ]);
    ok(&o);
    let answer: Value = serde_json::from_slice(&o.stdout).expect("the result");
    assert_eq!(answer["ok"], true, "{answer:#}");
    let o = scar(&[
        "invoke", ".", "echo", "--script", "check.sh", "--", "a", "wrong",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let _ = child.kill();
    let _ = child.wait();
}
