//! The `scar-supervisor` program's command line, run as a process: its version mark (which
//! scar reads from the file to know what it puts into images), usage errors, and local mode
//! on an event that needs no AWS (the script's input in the event itself).

use std::process::Command;

fn supervisor(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scar-supervisor"))
        .args(args)
        .current_dir(dir)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "unused")
        .env("AWS_SECRET_ACCESS_KEY", "unused")
        .env_remove("SCAR_CONFIG")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("scar-supervisor runs")
}

#[test]
fn the_version_is_what_scar_reads_from_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = supervisor(&["--version"], dir.path());
    assert!(o.status.success());
    let shown = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert_eq!(shown, format!("scar-supervisor {}", scar_contract::VERSION));
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_scar-supervisor")).expect("the binary");
    assert_eq!(
        scar_contract::marked_version(&bytes),
        Some(scar_contract::VERSION)
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_to_give() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &[][..],
        &["--event"][..],
        &["--nope"][..],
        &["batch", "--event", "e.json"][..],
    ] {
        let o = supervisor(args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn local_mode_runs_the_script_on_the_events_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"data": "c2NhciE=", "args": ["x y"]}"#,
    )
    .expect("event");
    std::fs::write(
        dir.path().join("function.json"),
        r#"{"stack": "s", "function": "f", "timeout_threshold": 1, "timeout": 30,
            "script": "printf '%s|%s|%s' \"$(cat \"$INPUT_FILE_PATH\")\" \"$1\" \"$SCAR_FUNCTION\"; exit 0"}"#,
    )
    .expect("config");
    let o = supervisor(
        &[
            "--event",
            "event.json",
            "--config",
            "function.json",
            "--request-id",
            "r-1",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(answer["ok"], true);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("scar!|x y|f"),
        "the script's output is logged: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(dir.path().join("bad.json"), r#"{"stack": "s"}"#).expect("config");
    let o = supervisor(
        &["--event", "event.json", "--config", "bad.json"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.json"),
        "the file is named"
    );
}
