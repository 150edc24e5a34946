//! Running the user's script: `/bin/sh script.sh ARGS` in the work folder, with SCAR's
//! environment contract, its output streamed to the log line by line (and kept: stdout is an
//! HTTP response body), stopped when the time limit comes so results can still be uploaded.

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

/// Runs `script` with `args` in `workdir`, with `env` added, for at most `limit`.
///
/// # Errors
/// When the shell cannot be started or the script cannot be written.
pub async fn run(
    script: &str,
    args: &[String],
    workdir: &Path,
    env: &[(String, String)],
    limit: Duration,
) -> std::io::Result<ScriptResult> {
    let path = workdir.join("script.sh");
    tokio::fs::write(&path, script).await?;
    let mut child = Command::new("/bin/sh")
        .arg(&path)
        .args(args)
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so a timeout stops what the script started too.
        .process_group(0)
        .spawn()?;
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
            if let Some(pid) = pid {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status()
                    .await;
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
            "echo out-$1; for i in $(seq 1 30); do echo err-$i >&2; done; exit 3",
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
            "echo started; sleep 30",
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
    }
}
