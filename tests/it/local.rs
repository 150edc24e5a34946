//! Running images here: a function's image assembled from a real registry into a cached root
//! file system (layers applied as the OCI spec says), then run in the unprivileged sandbox.

use std::path::Path;
use std::sync::Mutex;

use scar::image::build::Spec;
use scar::image::local::assemble;
use scar::image::reference::{Endpoints, ImageRef};
use scar::image::registry::Registry;
use scar::local::sandbox::{Sandbox, Tool, prepare_root};
use serde_json::json;

use crate::runtime::push_busybox_base;

#[tokio::test(flavor = "multi_thread")]
async fn an_image_assembled_here_unpacks_as_the_oci_spec_says_runs_and_is_reused() {
    let base = push_busybox_base();
    let reg = Registry::new(Endpoints::default(), None).expect("client");
    let target = ImageRef::parse("127.0.0.1:9/not/pushed:local").expect("target");
    let spec = Spec::new(
        &base,
        None,
        "amd64",
        &json!({"name": "f"}),
        "cat /srv/keep-link.txt\n",
        target,
    )
    .expect("a spec (scripts/test.sh builds the supervisors)");
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
    let out = sandbox.command(&tool).output().await.expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
}
