//! Running images here: a function's image assembled from a real registry into a cached root
//! file system (layers applied as the OCI spec says), then run in the unprivileged sandbox.

use std::path::Path;
use std::sync::Mutex;

use scar::image::build::Spec;
use scar::image::local::assemble;
use scar::image::reference::{Endpoints, ImageRef};
use scar::image::registry::Registry;
use scar::local::run::{Ended, Invocation};
use scar::local::runtime_api::Outcome;
use scar::local::sandbox::{Sandbox, Tool, prepare_root};
use serde_json::json;

use crate::runtime::push_busybox_base;

/// The image of a function `f` running `script` on `base`, for amd64 (assembled here, so
/// its target is never pushed to).
fn spec_of(base: &str, script: &str, threshold: u32, timeout: u32) -> Spec {
    let config = json!({"stack": "s", "function": "f", "script": script,
                        "timeout_threshold": threshold, "timeout": timeout});
    let target = ImageRef::parse("127.0.0.1:9/not/pushed:local").expect("target");
    Spec::new(base, None, "amd64", &config, script, target)
        .expect("a spec (scripts/test.sh builds the supervisors)")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_assembled_here_unpacks_as_the_oci_spec_says_runs_and_is_reused() {
    let base = push_busybox_base();
    let reg = Registry::new(Endpoints::default(), None).expect("client");
    let spec = spec_of(&base, "cat /srv/keep-link.txt\n", 2, 30);
    let cache = tempfile::tempdir().expect("cache");
    let lines = Mutex::new(Vec::new());
    let note = |l: &str| lines.lock().expect("lines").push(l.to_owned());
    let first = assemble(&reg, &spec, cache.path(), &note)
        .await
        .expect("assembled");
    let root = first.root.as_path();
    let stats = first.unpacked.clone().expect("unpacked the first time");
    assert!(stats.whiteouts >= 2 && stats.hardlinks >= 1, "{stats:?}");
    assert!(!root.join("etc/motd").exists(), "whiteout");
    assert!(!root.join("srv/old/a.txt").exists(), "opaque folder");
    assert!(root.join("srv/old/b.txt").is_file());
    assert_eq!(
        std::fs::read_link(root.join("srv/escape")).expect("link"),
        Path::new("/../../etc")
    );
    assert!(root.join("opt/scar/bin/scar-supervisor").is_file());
    assert_eq!(
        std::fs::read_to_string(root.join(scar::image::SCRIPT_PATH)).expect("script"),
        "cat /srv/keep-link.txt\n"
    );
    assert_eq!(first.env, ["PATH=/bin"]);
    assert!(
        lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.starts_with("downloading base layer 1/2")),
        "{:?}",
        lines.lock().expect("lines")
    );

    // The same inputs: the same folder, nothing downloaded or unpacked again.
    lines.lock().expect("lines").clear();
    let again = assemble(&reg, &spec, cache.path(), &note)
        .await
        .expect("again");
    assert_eq!((again.root.as_path(), again.unpacked), (root, None));
    assert!(
        !lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains("downloading") || l.contains("unpacking")),
        "{:?}",
        lines.lock().expect("lines")
    );

    // It runs: busybox's shell, from the image, reading through the hard link.
    prepare_root(root).expect("mount points");
    let sandbox = Sandbox {
        root: root.to_owned(),
        tmp_mb: 512,
        env: vec![("PATH".into(), "/bin".into())],
        cwd: "/".into(),
        argv: vec!["/bin/sh".into(), "/opt/scar/script.sh".into()],
    };
    let tool = Tool::find().expect("bwrap or unshare (scripts/test.sh installs bubblewrap)");
    let out = sandbox
        .command(&tool)
        .expect("command")
        .output()
        .await
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_supervisor_answers_through_the_runtime_api_and_a_hung_one_times_out() {
    let base = push_busybox_base();
    let reg = Registry::new(Endpoints::default(), None).expect("client");
    let cache = tempfile::tempdir().expect("cache");
    let image = |script: &str| spec_of(&base, script, 1, 3);
    let tool = Tool::find().expect("bwrap or unshare");
    let run = |root: &Path, timeout: u64| Invocation {
        tool: tool.clone(),
        function: "f".into(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        memory: 256,
        region: "us-east-1".into(),
        timeout: std::time::Duration::from_secs(timeout),
        tmp_mb: 64,
        root: root.to_owned(),
        cwd: "/".into(),
        argv: vec!["/opt/scar/bin/scar-supervisor".into()],
        env: vec![
            ("PATH".into(), "/bin".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:9".into()),
        ],
        event: b"{}".to_vec(),
    };

    let ok = assemble(
        &reg,
        &image("echo from-the-image; cat /srv/keep-link.txt\n"),
        cache.path(),
        &|_| {},
    )
    .await
    .expect("assembled");
    prepare_root(&ok.root).expect("mount points");
    let ran = scar::local::run::invoke(run(&ok.root, 10))
        .await
        .expect("runs");
    let Ended::Answered(Outcome::Response(body)) = &ran.ended else {
        panic!("{:?}\n{}", ran.ended, String::from_utf8_lossy(&ran.stderr));
    };
    let body = String::from_utf8_lossy(body);
    assert!(
        body.contains("\"ok\":true") && body.contains("\"exit_status\":0"),
        "{body}"
    );
    // The script's output goes where Lambda sends it: the function's log.
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        log.contains("from-the-image") && log.contains("kept"),
        "{log}"
    );
    assert!(!ran.request_id.is_empty());

    // A script that never ends: the supervisor stops it at the threshold and answers, or the
    // timeout ends the sandbox; either way nothing is left running.
    let hung = assemble(&reg, &image("sleep 611\n"), cache.path(), &|_| {})
        .await
        .expect("assembled");
    prepare_root(&hung.root).expect("mount points");
    let ran = scar::local::run::invoke(run(&hung.root, 3))
        .await
        .expect("runs");
    assert!(
        ran.took < std::time::Duration::from_secs(8),
        "{:?}",
        ran.took
    );
    assert!(
        !matches!(ran.ended, Ended::Answered(Outcome::Response(_))),
        "{:?}",
        ran.ended
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 611"])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
