//! What a running watcher tells its monitors: counters kept as runs end, rendered as the
//! Prometheus text format (`/metrics`) and as a health document (`/healthz`). Pure: the
//! server and the runner share one [`Metrics`] behind a lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How a run ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Changes applied.
    Applied,
    /// Nothing to do.
    NoChanges,
    /// Planned, not applied (a dry run).
    Planned,
    /// Refused (too many deletes, plan errors, every function deleted).
    Refused,
    /// The manifests did not validate.
    Invalid,
    /// The lock was held by someone else.
    Locked,
    /// A step failed, or AWS could not be read.
    Failed,
    /// Skipped: the watcher is paused.
    Paused,
}

impl Outcome {
    /// The `outcome` label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::NoChanges => "no_changes",
            Outcome::Planned => "planned",
            Outcome::Refused => "refused",
            Outcome::Invalid => "invalid",
            Outcome::Locked => "locked",
            Outcome::Failed => "failed",
            Outcome::Paused => "paused",
        }
    }

    /// True for a run that left the stack as the manifests say.
    #[must_use]
    pub fn success(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::NoChanges)
    }

    /// True for a run that failed to converge: what makes the watcher unhealthy and what a
    /// `run_failed` notification reports.
    #[must_use]
    pub fn failing(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Locked | Outcome::Refused | Outcome::Invalid
        )
    }
}

/// Upper bounds of the run duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0];

/// The watcher's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// The stack watched.
    pub stack: String,
    runs: BTreeMap<Outcome, u64>,
    /// Count of runs at or under each bucket bound, then the sum and count.
    durations: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    drift_corrected: u64,
    lock_waits: u64,
    last_success: Option<f64>,
    last_outcome: Option<Outcome>,
    /// Paused by a file or a signal.
    pub paused: bool,
    /// The commit applied last (following a Git remote).
    pub commit: Option<String>,
    fetch_failures: u64,
    /// False while the last fetch of the Git remote failed.
    fetch_failing: bool,
}

impl Metrics {
    /// Counts a run that ended as `outcome` after `secs`, at `now` (Unix seconds), having
    /// set back `drift` resources changed outside scar.
    pub fn record(&mut self, outcome: Outcome, secs: f64, now: f64, drift: u64) {
        *self.runs.entry(outcome).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.durations[i] += 1;
            }
        }
        self.duration_sum += secs;
        self.duration_count += 1;
        self.drift_corrected += drift;
        if outcome == Outcome::Locked {
            self.lock_waits += 1;
        }
        if outcome.success() {
            self.last_success = Some(now);
        }
        if outcome != Outcome::Paused {
            self.last_outcome = Some(outcome);
        }
    }

    /// Counts a fetch of the followed Git remote: a failing remote (expired credentials, a
    /// deleted branch) makes the watcher unhealthy until a fetch succeeds, even with no run.
    pub fn fetched(&mut self, ok: bool) {
        self.fetch_failing = !ok;
        if !ok {
            self.fetch_failures += 1;
        }
    }

    /// True unless the last run that was not skipped failed to converge, or the last fetch
    /// of the followed Git remote failed.
    #[must_use]
    pub fn healthy(&self) -> bool {
        !self.fetch_failing && !self.last_outcome.is_some_and(Outcome::failing)
    }

    /// The `/healthz` document.
    #[must_use]
    pub fn health(&self) -> serde_json::Value {
        serde_json::json!({
            "status": if self.healthy() { "ok" } else { "failing" },
            "stack": self.stack,
            "paused": self.paused,
            "last_outcome": self.last_outcome.map(Outcome::label),
            "last_success_unix": self.last_success,
            "runs": self.runs.values().sum::<u64>(),
            "commit": self.commit,
            "git_fetch_failing": self.fetch_failing,
        })
    }

    /// The Prometheus text exposition (version 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let stack = escape(&self.stack);
        let _ = writeln!(
            out,
            "# HELP scar_watch_runs_total Runs of the watcher, by how they ended.\n# TYPE scar_watch_runs_total counter"
        );
        for o in [
            Outcome::Applied,
            Outcome::NoChanges,
            Outcome::Planned,
            Outcome::Refused,
            Outcome::Invalid,
            Outcome::Locked,
            Outcome::Failed,
            Outcome::Paused,
        ] {
            let n = self.runs.get(&o).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "scar_watch_runs_total{{stack=\"{stack}\",outcome=\"{}\"}} {n}",
                o.label()
            );
        }
        let _ = writeln!(
            out,
            "# HELP scar_watch_run_duration_seconds How long runs took.\n# TYPE scar_watch_run_duration_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "scar_watch_run_duration_seconds_bucket{{stack=\"{stack}\",le=\"{bound}\"}} {}",
                self.durations[i]
            );
        }
        let _ = writeln!(
            out,
            "scar_watch_run_duration_seconds_bucket{{stack=\"{stack}\",le=\"+Inf\"}} {}\nscar_watch_run_duration_seconds_sum{{stack=\"{stack}\"}} {}\nscar_watch_run_duration_seconds_count{{stack=\"{stack}\"}} {}",
            self.duration_count, self.duration_sum, self.duration_count
        );
        let single = [
            (
                "scar_watch_drift_corrected_total",
                "counter",
                "Resources changed outside scar that runs set back.",
                self.drift_corrected as f64,
            ),
            (
                "scar_watch_lock_waits_total",
                "counter",
                "Runs that found the stack's lock held by another run.",
                self.lock_waits as f64,
            ),
            (
                "scar_watch_git_fetch_failures_total",
                "counter",
                "Fetches of the followed Git remote that failed.",
                self.fetch_failures as f64,
            ),
            (
                "scar_watch_last_success_timestamp_seconds",
                "gauge",
                "When a run last left the stack as the manifests say (Unix time; 0: never).",
                self.last_success.unwrap_or(0.0),
            ),
            (
                "scar_watch_paused",
                "gauge",
                "1 while the watcher is paused.",
                f64::from(u8::from(self.paused)),
            ),
            (
                "scar_watch_healthy",
                "gauge",
                "1 unless the last run failed to converge.",
                f64::from(u8::from(self.healthy())),
            ),
        ];
        for (name, kind, help, value) in single {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{stack=\"{stack}\"}} {value}"
            );
        }
        if let Some(c) = &self.commit {
            let _ = writeln!(
                out,
                "# HELP scar_watch_commit_info The Git commit applied last.\n# TYPE scar_watch_commit_info gauge\nscar_watch_commit_info{{stack=\"{stack}\",commit=\"{}\"}} 1",
                escape(c)
            );
        }
        out
    }
}

/// A label value escaped for the text format (backslash, quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_counted_by_outcome_with_durations_and_drift() {
        let mut m = Metrics {
            stack: "wc".into(),
            ..Metrics::default()
        };
        m.record(Outcome::Applied, 1.5, 1000.0, 2);
        m.record(Outcome::Locked, 0.1, 1010.0, 0);
        let text = m.render();
        assert!(text.contains("scar_watch_runs_total{stack=\"wc\",outcome=\"applied\"} 1"));
        assert!(text.contains("scar_watch_runs_total{stack=\"wc\",outcome=\"locked\"} 1"));
        assert!(text.contains("scar_watch_run_duration_seconds_bucket{stack=\"wc\",le=\"0.5\"} 1"));
        assert!(text.contains("scar_watch_run_duration_seconds_bucket{stack=\"wc\",le=\"2\"} 2"));
        assert!(text.contains("scar_watch_run_duration_seconds_count{stack=\"wc\"} 2"));
        assert!(text.contains("scar_watch_drift_corrected_total{stack=\"wc\"} 2"));
        assert!(text.contains("scar_watch_lock_waits_total{stack=\"wc\"} 1"));
        assert!(text.contains("scar_watch_last_success_timestamp_seconds{stack=\"wc\"} 1000"));
        assert!(!m.healthy(), "the lock was held at the last run");
        assert_eq!(m.health()["status"], "failing");
        m.record(Outcome::Paused, 0.0, 1020.0, 0);
        assert!(!m.healthy(), "a paused run does not hide the last outcome");
        m.record(Outcome::NoChanges, 0.2, 1030.0, 0);
        assert!(m.healthy());
        m.fetched(false);
        assert!(!m.healthy(), "a remote that cannot be fetched");
        assert!(
            m.render()
                .contains("scar_watch_git_fetch_failures_total{stack=\"wc\"} 1")
        );
        m.fetched(true);
        assert!(m.healthy());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
