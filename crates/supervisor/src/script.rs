//! Running the user's script (`/bin/sh script.sh ARGS` in the work folder) or, for a function
//! with none, the base image's own command, with SCAR's environment contract; its output
//! streamed to the log line by line (and kept: stdout is an HTTP response body); stopped with
//! everything it started when the time limit comes, so results can still be uploaded. Nothing
//! is taken from the image but `/bin/sh` for a script: the process group is stopped with a
//! system call, not a `kill` program the image may lack.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

/// How many stderr lines a failure report keeps.
pub const STDERR_TAIL_LINES: usize = 20;

/// What a script run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResult {
    /// The exit status; `None` when it was stopped or killed by a signal.
    pub status: Option<i32>,
    /// True when the time limit stopped it.
    pub timed_out: bool,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Its last stderr lines.
    pub stderr_tail: Vec<String>,
}

impl ScriptResult {
    /// True for exit status 0 within the time limit.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.status == Some(0) && !self.timed_out
    }
}

async fn keep_all(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => {
                all.extend_from_slice(&buf[..n]);
                // Streamed to the log as it comes, line by line where it is text.
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    tracing::info!(target: "scar::script", stream = "stdout", "{line}");
                }
            }
        }
    }
}

async fn keep_tail(r: impl AsyncRead + Unpin) -> Vec<String> {
    let mut lines = BufReader::new(r).lines();
    let mut tail = std::collections::VecDeque::new();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("{line}");
        tail.push_back(line);
        if tail.len() > STDERR_TAIL_LINES {
            tail.pop_front();
        }
    }
    tail.into_iter().collect()
}

/// What a reader task collected. A process the script left running may hold the pipes, so
/// the wait is brief.
async fn joined<T: Default>(task: Option<tokio::task::JoinHandle<T>>) -> T {
    match task {
        Some(h) => tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => T::default(),
    }
}

/// What runs for an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A shell script's text, run as `/bin/sh script.sh ARGS` in the work folder.
    Script(String),
    /// A command line (the image's own entrypoint and command), run in `working_dir` (the
    /// image's) or else the work folder.
    Command {
        /// Program and arguments; the program is looked up in `PATH`.
        argv: Vec<String>,
        /// Where it runs.
        working_dir: Option<String>,
    },
}

/// Runs `program` (a script gets `args`) in `workdir`, with `env` added, for at most `limit`.
///
/// # Errors
/// When the shell or the command cannot be started, or the script cannot be written.
pub async fn run(
    program: &Program,
    args: &[String],
    workdir: &Path,
    env: &[(String, String)],
    limit: Duration,
) -> std::io::Result<ScriptResult> {
    let mut command = match program {
        Program::Script(text) => {
            let path = workdir.join("script.sh");
            tokio::fs::write(&path, text).await?;
            let mut c = Command::new("/bin/sh");
            c.arg(&path).args(args).current_dir(workdir);
            c
        }
        Program::Command { argv, working_dir } => {
            let Some((program, rest)) = argv.split_first() else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the function has no script, and its image no entrypoint or command to run",
                ));
            };
            let mut c = Command::new(program);
            c.args(rest)
                .current_dir(working_dir.as_deref().map_or(workdir, Path::new));
            c
        }
    };
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout stops what the script started too.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            let what = match program {
                Program::Script(_) => "/bin/sh".to_owned(),
                Program::Command { argv, .. } => argv.first().cloned().unwrap_or_default(),
            };
            std::io::Error::new(e.kind(), format!("starting {what}: {e}"))
        })?;
    let pid = child.id();
    let stdout = child.stdout.take().map(|o| tokio::spawn(keep_all(o)));
    let stderr = child.stderr.take().map(|e| tokio::spawn(keep_tail(e)));
    let (status, timed_out) = match tokio::time::timeout(limit, child.wait()).await {
        Ok(s) => (s?.code(), false),
        Err(_) => {
            tracing::warn!(
                ?limit,
                "the script ran out of time: stopped, to upload what it made"
            );
            if let Some(group) = pid
                .and_then(|p| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
            {
                // Its own group (process_group(0) below): everything it started goes too.
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            (None, true)
        }
    };
    let stdout = joined(stdout).await;
    let stderr_tail = joined(stderr).await;
    Ok(ScriptResult {
        status,
        timed_out,
        stdout,
        stderr_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_output_and_stderr_tail_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = run(
            &Program::Script(
                "echo out-$1; for i in $(seq 1 30); do echo err-$i >&2; done; exit 3".into(),
            ),
            &["x".into()],
            dir.path(),
            &[],
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert_eq!(r.status, Some(3));
        assert!(!r.ok());
        assert_eq!(r.stdout, b"out-x\n");
        assert_eq!(r.stderr_tail.len(), STDERR_TAIL_LINES);
        assert_eq!(r.stderr_tail.last().map(String::as_str), Some("err-30"));
    }

    #[tokio::test]
    async fn the_time_limit_stops_the_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = std::time::Instant::now();
        let r = run(
            &Program::Script(
                "echo started; (while true; do echo x >> left.txt; sleep 0.05; done) & sleep 30"
                    .into(),
            ),
            &[],
            dir.path(),
            &[],
            Duration::from_millis(500),
        )
        .await
        .expect("runs");
        assert!(r.timed_out);
        assert_eq!(r.stdout, b"started\n");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let left = dir.path().join("left.txt");
        let before = size(&left);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            size(&left),
            before,
            "what the script started in the background was stopped too"
        );
    }

    #[tokio::test]
    async fn the_image_command_runs_with_arguments_in_its_working_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image_dir = tempfile::tempdir().expect("tempdir");
        let r = run(
            &Program::Command {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "pwd; echo \"$1\"".into(),
                    "x".into(),
                    "a b".into(),
                ],
                working_dir: Some(image_dir.path().display().to_string()),
            },
            &[],
            dir.path(),
            &[],
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert!(r.ok(), "{r:?}");
        assert_eq!(
            String::from_utf8_lossy(&r.stdout),
            format!("{}\na b\n", image_dir.path().display())
        );
        let none = run(
            &Program::Command {
                argv: Vec::new(),
                working_dir: None,
            },
            &[],
            dir.path(),
            &[],
            Duration::from_secs(1),
        )
        .await
        .expect_err("nothing to run");
        assert!(none.to_string().contains("no script"), "{none}");
    }
}
