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

    // Regression (issue 23, finding 10): a cached root file system was used whoever had put
    // it there. One that another user owns (root can make one here) is refused, not run.
    if std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        std::os::unix::fs::chown(root, Some(4242), None).expect("chown");
        let e = assemble(&reg, &spec, cache.path(), &note)
            .await
            .expect_err("refused")
            .to_string();
        assert!(e.contains("owned by uid 4242"), "{e}");
        std::os::unix::fs::chown(root, Some(0), None).expect("chown back");
    }
    use std::os::unix::fs::PermissionsExt as _;
    for private in [
        cache.path().to_path_buf(),
        cache.path().join("rootfs"),
        root.to_owned(),
    ] {
        let mode = std::fs::metadata(&private)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{}", private.display());
    }

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
    for tool in tools() {
        let out = sandbox
            .command(&tool)
            .expect("command")
            .output()
            .await
            .expect("runs");
        assert!(
            out.status.success(),
            "{}: {}",
            tool.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "kept\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_supervisor_answers_through_the_runtime_api_and_a_hung_one_times_out() {
    let base = push_busybox_base();
    let reg = Registry::new(Endpoints::default(), None).expect("client");
    let cache = tempfile::tempdir().expect("cache");
    let image = |script: &str| spec_of(&base, script, 1, 3);
    let run = |tool: &Tool, root: &Path, timeout: u64| Invocation {
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
    for tool in tools() {
        let ran = scar::local::run::invoke(run(&tool, &ok.root, 10))
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
    }

    // A script that never ends: the supervisor stops it at the threshold and answers, or the
    // timeout ends the sandbox; either way nothing is left running.
    let hung = assemble(&reg, &image("sleep 611\n"), cache.path(), &|_| {})
        .await
        .expect("assembled");
    prepare_root(&hung.root).expect("mount points");
    for tool in tools() {
        let ran = scar::local::run::invoke(run(&tool, &hung.root, 3))
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
            "{}: left behind: {}",
            tool.name(),
            String::from_utf8_lossy(&left.stdout)
        );
    }
}

/// Both sandboxes: bubblewrap (scripts/test.sh installs it) and scar's own launcher.
fn tools() -> Vec<Tool> {
    let bwrap = Tool::find_with(Path::new(env!("CARGO_BIN_EXE_scar")));
    let mut tools = vec![Tool::Builtin(env!("CARGO_BIN_EXE_scar").into())];
    match bwrap {
        Ok(t @ Tool::Bwrap(_)) => tools.push(t),
        _ => assert!(
            std::env::var_os("CI").is_none(),
            "CI runs both sandboxes: install bubblewrap"
        ),
    }
    tools
}

/// A root made of the host's busybox (Debian's busybox-static, which scripts/test.sh
/// installs): `/bin/busybox` and its applets, in a folder of the cache's kind (private).
fn busybox_root() -> tempfile::TempDir {
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.is_file(), "needs /bin/busybox (busybox-static)");
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy");
    for applet in [
        "sh", "cat", "echo", "ls", "touch", "env", "sort", "cut", "tr", "sleep", "mount", "id",
        "readlink", "grep", "head", "chmod", "rm", "ps",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link");
    }
    prepare_root(dir.path()).expect("mount points");
    dir
}

/// Runs `script` with `/bin/sh` in a sandbox of `tool` on `root`.
async fn sh(tool: &Tool, root: &Path, env: &[(&str, &str)], script: &str) -> (i32, String, String) {
    let sb = Sandbox {
        root: root.to_owned(),
        tmp_mb: 16,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([("PATH".to_owned(), "/bin".to_owned())])
            .collect(),
        cwd: "/tmp".into(),
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
    };
    let out = sb
        .command(tool)
        .expect("command")
        .output()
        .await
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn both_sandboxes_give_a_read_only_root_a_private_tmp_and_only_the_environment_set() {
    let root = busybox_root();
    for tool in tools() {
        let (code, out, err) = sh(
            &tool,
            root.path(),
            &[("GREETING", "hi")],
            "echo $GREETING; env | sort | cut -d= -f1 | tr '\\n' ' '; echo; pwd; \
             touch /tmp/ok && echo tmp-writable; touch /bin/x 2>/dev/null || echo root-read-only; \
             ls /proc/1/exe >/dev/null 2>&1; cat /dev/null && echo dev; id -u; \
             echo to-stderr >/dev/stderr; exit 3",
        )
        .await;
        let name = tool.name();
        assert_eq!(code, 3, "{name}: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "hi", "{name}: {out}");
        assert!(
            !lines[1].contains("HOME") && lines[1].contains("GREETING"),
            "{name}: {out}"
        );
        assert_eq!(
            &lines[2..],
            ["/tmp", "tmp-writable", "root-read-only", "dev", "993"],
            "{name}"
        );
        assert!(err.contains("to-stderr"), "{name}: {err}");
        assert!(
            !root.path().join("tmp/ok").exists(),
            "{name}: /tmp is the sandbox's"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_sandbox_lets_a_function_reach_the_host_through_proc_or_a_remount() {
    // Regression (issue 23, finding 2): under `unshare` the host's `sh` (then `xargs`) was PID 1
    // of the namespace, outside the chroot, and a function read and wrote the host's files
    // through /proc/1/root. Each way out is tried under both sandboxes: the host's files
    // through any process's root, remounting the root read-write (also from a user namespace
    // of the function's own), writing into the root file system (the cache it was unpacked
    // into), and the host's processes.
    let root = busybox_root();
    // Outside /tmp, which the sandbox has a /tmp of its own for.
    let host_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("host dir");
    let host_file = host_dir.path().join("secret");
    std::fs::write(&host_file, "host-secret").expect("write");
    let (host, dir) = (host_file.display(), host_dir.path().display());
    let probe = format!(
        "for p in /proc/[0-9]*; do cat $p/root{host} 2>/dev/null && echo \"read through $p\"; \
           echo x > $p/root{host} 2>/dev/null && echo \"wrote through $p\"; \
           ls $p/root{dir} >/dev/null 2>&1 && echo \"host root through $p\"; done; \
         ls /proc | grep -c '^[0-9]' | sed 's/^/processes: /'; \
         readlink /proc/self/root; readlink /proc/1/root 2>/dev/null | sed 's/^/pid 1: /'; \
         mount -o remount,rw / && echo remounted; \
         mount -o remount,bind,rw / && echo remounted-bind; \
         touch /bin/planted && echo planted; \
         chmod 777 /bin/busybox && echo chmodded; \
         unshare -rm sh -c 'mount -o remount,rw / && touch /bin/planted-ns' && echo nested; \
         echo done"
    );
    for tool in tools() {
        let name = tool.name();
        let (code, out, err) = sh(&tool, root.path(), &[], &probe).await;
        assert_eq!(code, 0, "{name}: {err}");
        for escaped in [
            "read through",
            "wrote through",
            "host root through",
            "remounted",
            "planted",
            "chmodded",
            "nested",
        ] {
            assert!(!out.contains(escaped), "{name}: {escaped}: {out}");
        }
        assert!(out.contains("done"), "{name}: {out}");
        // Each was tried, and refused by the kernel (busybox's words).
        assert_eq!(err.matches("permission denied").count(), 3, "{name}: {err}");
        assert_eq!(
            err.matches("Read-only file system").count(),
            2,
            "{name}: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&host_file).expect("host file"),
            "host-secret",
            "{name}"
        );
        assert!(!root.path().join("bin/planted").exists(), "{name}");
        // The sandbox's own processes only (the shell, its pipeline), and its root is `/`.
        let processes: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("processes: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("counted");
        assert!(processes < 10, "{name}: {out}");
        assert!(out.lines().any(|l| l == "/"), "{name}: its own root: {out}");
        // PID 1's root is the sandbox's too, where it can be read at all.
        assert!(
            out.lines()
                .filter_map(|l| l.strip_prefix("pid 1: "))
                .all(|r| r == "/"),
            "{name}: {out}"
        );
    }
}

/// Every host process's command line holding `needle`.
fn command_lines_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_is_on_no_command_line_at_any_moment_of_a_start() {
    // Regression (issue 23, finding 8): under `unshare`, `env -i KEY=value...` held
    // AWS_SECRET_ACCESS_KEY in its argv until it ran the program; a poller reading every
    // process's command line caught it in 4 of 6 starts. Here every command line is read
    // throughout each start, from before the spawn to the program's first output, ten starts
    // per sandbox.
    let root = busybox_root();
    for tool in tools() {
        for start in 0..10 {
            let secret = format!("not-on-a-command-line-{}-{start}", std::process::id());
            let sb = Sandbox {
                root: root.path().to_owned(),
                tmp_mb: 16,
                env: vec![
                    ("AWS_SECRET_ACCESS_KEY".into(), secret.clone()),
                    ("PATH".into(), "/bin".into()),
                ],
                cwd: "/".into(),
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo \"$AWS_SECRET_ACCESS_KEY\"; exec sleep 30".into(),
                ],
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let poller = {
                let (stop, secret) = (stop.clone(), secret.clone());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut scans = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        seen.extend(command_lines_with(&secret));
                        scans += 1;
                    }
                    (seen, scans)
                })
            };
            let mut child = sb
                .command(&tool)
                .expect("command")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("starts");
            let mut out = child.stdout.take().expect("stdout");
            let mut first = [0u8; 8];
            tokio::io::AsyncReadExt::read_exact(&mut out, &mut first)
                .await
                .expect("the program started");
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            let (seen, scans) = poller.join().expect("poller");
            // The program printed before its `exec sleep 30`: it is seen running once the exec
            // is done (a read at once can come before it).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut running = command_lines_with("sleep 30");
            while running.is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
                running = command_lines_with("sleep 30");
            }
            let _ = child.kill().await;
            assert_eq!(&first, b"not-on-a", "{}", tool.name());
            assert!(seen.is_empty(), "{}: {seen:?}", tool.name());
            assert!(scans > 0 && !running.is_empty(), "{}", tool.name());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_image_whose_env_holds_a_nul_is_refused_before_anything_runs() {
    // Regression (issue 23, finding 7): an image's `Env` (a registry's answer) reached the
    // sandbox's arguments as it was; under bubblewrap `A=x\0--cap-add\0ALL` added
    // `--cap-add ALL`.
    use crate::support::registry::{push_image, shared};
    use crate::support::rootfs::{Entry, layer};
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static");
    for (tag, config) in [
        (
            "nul-env",
            json!({"Env": ["PATH=/bin", "A=x\u{0}--cap-add\u{0}ALL"]}),
        ),
        ("nul-name", json!({"Env": ["A\u{0}--cap-add=ALL"]})),
        (
            "nul-workdir",
            json!({"Env": ["PATH=/bin"], "WorkingDir": "/\u{0}--cap-add\u{0}ALL"}),
        ),
    ] {
        let base = push_image(
            shared(),
            "base/hostile",
            tag,
            "amd64",
            &[layer(&[Entry::file("bin/busybox", &busybox, 0o755)])],
            config,
        );
        let reg = Registry::new(Endpoints::default(), None).expect("client");
        let cache = tempfile::tempdir().expect("cache");
        let e = assemble(
            &reg,
            &spec_of(&base, "true\n", 2, 30),
            cache.path(),
            &|_| {},
        )
        .await
        .expect_err("refused")
        .to_string();
        assert!(e.contains("is refused: its"), "{tag}: {e}");
        assert!(
            std::fs::read_dir(cache.path().join("rootfs")).map_or(0, |d| d.count()) == 0,
            "{tag}: nothing unpacked"
        );
    }
}
