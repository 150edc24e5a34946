//! Watch mode's scheduling: when to run, never how. File events are debounced (one save is one
//! run, even when an editor writes twice), events that arrive during a run are coalesced into
//! a single next run, only one run is ever in flight, and a periodic tick re-runs to heal
//! drift. The runner decides what a run does; tests drive this loop with tokio's paused clock.

pub mod controller;
pub mod git;
pub mod metrics;
pub mod serve;
pub mod webhook;

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

/// What arrives on the watch loop's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A file under the watched directory changed.
    FileChanged,
    /// Stop: finish the run in flight, then return.
    Stop,
}

/// Why a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first run, at start-up.
    Startup,
    /// Files changed (after the quiet period).
    Change,
    /// The interval passed with no change (drift self-heal).
    Interval,
    /// The last run failed in a way a retry may cure; this one retries, sooner than the
    /// interval.
    Retry,
}

impl Reason {
    /// As printed.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Startup => "start-up",
            Reason::Change => "files changed",
            Reason::Interval => "interval",
            Reason::Retry => "retry after a failure",
        }
    }
}

/// How a run ended, as far as scheduling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Converged, or stopped for a reason only a person or a file change cures (invalid
    /// manifests, a refused plan): the next run comes with the next change or interval.
    Settled,
    /// Failed in a way a retry may cure (AWS unreachable, a step failed, the lock held): the
    /// next run comes sooner than the interval, backing off (kube's error policy).
    Failed,
}

/// What carries out one run.
pub trait Runner {
    /// Runs once. Returns when the run is over, with how it ended.
    fn run(&mut self, reason: Reason) -> impl Future<Output = Ran>;
}

/// The first retry after a failed run comes this long after it; each failure in a row
/// doubles the wait, up to the interval (or [`RETRY_MAX`] when there is none).
pub const RETRY_FIRST: Duration = Duration::from_secs(5);
/// The longest wait before a retry when watching has no interval.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// The wait before retrying after `failures` failed runs in a row (at least one).
#[must_use]
pub fn retry_delay(failures: u32, interval: Option<Duration>) -> Duration {
    let cap = interval.unwrap_or(RETRY_MAX);
    let doubled = RETRY_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(cap)
}

/// When the next unprompted run is due after a run that ended as `ran`.
fn next_due(ran: Ran, failures: &mut u32, interval: Option<Duration>) -> Option<(Instant, Reason)> {
    match ran {
        Ran::Settled => {
            *failures = 0;
            interval.map(|i| (Instant::now() + i, Reason::Interval))
        }
        Ran::Failed => {
            *failures = failures.saturating_add(1);
            Some((
                Instant::now() + retry_delay(*failures, interval),
                Reason::Retry,
            ))
        }
    }
}

/// Timing of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Quiet time after the last file event before a run starts.
    pub debounce: Duration,
    /// Time between drift-healing runs; `None` for never.
    pub interval: Option<Duration>,
}

/// Runs until [`Event::Stop`] arrives or the channel closes. Returns how many runs it made.
pub async fn watch<R: Runner>(
    events: &mut mpsc::Receiver<Event>,
    timing: Timing,
    runner: &mut R,
) -> usize {
    let mut runs = 0;
    let mut failures = 0;
    let ran = runner.run(Reason::Startup).await;
    runs += 1;
    let mut pending: Option<Instant> = None;
    let mut next_tick = next_due(ran, &mut failures, timing.interval);
    loop {
        let wake = match (pending, next_tick.map(|(t, _)| t)) {
            (Some(p), Some(t)) => Some(p.min(t)),
            (p, t) => p.or(t),
        };
        let event = match wake {
            Some(at) => tokio::select! {
                e = events.recv() => Some(e),
                () = tokio::time::sleep_until(at) => None,
            },
            None => Some(events.recv().await),
        };
        let reason = match event {
            Some(Some(Event::FileChanged)) => {
                pending = Some(Instant::now() + timing.debounce);
                continue;
            }
            Some(Some(Event::Stop) | None) => return runs,
            None => {
                let now = Instant::now();
                if pending.is_some_and(|p| p <= now) {
                    Reason::Change
                } else if let Some((t, why)) = next_tick
                    && t <= now
                {
                    why
                } else {
                    continue;
                }
            }
        };
        pending = None;
        let ran = runner.run(reason).await;
        runs += 1;
        next_tick = next_due(ran, &mut failures, timing.interval);
        // Whatever arrived during the run becomes one next run, after the quiet period.
        loop {
            match events.try_recv() {
                Ok(Event::FileChanged) => pending = Some(Instant::now() + timing.debounce),
                Ok(Event::Stop) => return runs,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return runs,
            }
        }
    }
}

/// Parses `300ms`, `30s`, `5m`, `1h`, or plain seconds.
///
/// # Errors
/// A message for anything else.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (such as 300ms, 30s, 5m, 1h)"))?;
    let seconds = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{s}` is too long a duration"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => Err(format!(
            "`{s}` has an unknown unit `{unit}` (use ms, s, m or h)"
        )),
    }
}

/// [`parse_duration`] for how often to fetch a Git remote: at least a second (0 would fetch
/// in a tight loop).
///
/// # Errors
/// As [`parse_duration`], and below one second.
pub fn parse_poll(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "`{s}`: the remote is fetched at most once a second (such as 30s or 1m)"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records when each run started (paused-clock time since the test began); the first
    /// `failing` runs fail.
    struct Recorder {
        start: Instant,
        runs: Vec<(Reason, Duration)>,
        took: Duration,
        failing: usize,
    }

    impl Runner for Recorder {
        async fn run(&mut self, reason: Reason) -> Ran {
            self.runs.push((reason, self.start.elapsed()));
            tokio::time::sleep(self.took).await;
            if self.runs.len() <= self.failing {
                Ran::Failed
            } else {
                Ran::Settled
            }
        }
    }

    fn timing(interval: Option<u64>) -> Timing {
        Timing {
            debounce: Duration::from_millis(300),
            interval: interval.map(Duration::from_secs),
        }
    }

    fn recorder(took_ms: u64) -> Recorder {
        Recorder {
            start: Instant::now(),
            runs: Vec::new(),
            took: Duration::from_millis(took_ms),
            failing: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_twenty_writes_is_one_run_after_the_quiet_period() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut r = recorder(0);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for _ in 0..20 {
                tx.send(Event::FileChanged).await.expect("send");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            tx.send(Event::Stop).await.expect("send");
        });
        let runs = watch(&mut rx, timing(None), &mut r).await;
        sender.await.expect("sender");
        assert_eq!(runs, 2, "{:?}", r.runs);
        assert_eq!(r.runs[1].0, Reason::Change);
        // The last write at 1.19 s, then 300 ms of quiet.
        assert_eq!(r.runs[1].1, Duration::from_millis(1490));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_during_a_run_make_exactly_one_more_run() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut r = recorder(2000);
        let sender = tokio::spawn(async move {
            // The start-up run lasts until 2 s; five writes arrive during it.
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                tx.send(Event::FileChanged).await.expect("send");
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            tx.send(Event::Stop).await.expect("send");
        });
        let runs = watch(&mut rx, timing(None), &mut r).await;
        sender.await.expect("sender");
        assert_eq!(runs, 2, "{:?}", r.runs);
        assert_eq!(r.runs[1], (Reason::Change, Duration::from_millis(2300)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_interval_heals_drift_and_a_change_resets_it() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut r = recorder(0);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(125)).await;
            tx.send(Event::FileChanged).await.expect("send");
            tokio::time::sleep(Duration::from_secs(100)).await;
            tx.send(Event::Stop).await.expect("send");
        });
        watch(&mut rx, timing(Some(60)), &mut r).await;
        sender.await.expect("sender");
        let got: Vec<(Reason, u64)> = r.runs.iter().map(|(w, t)| (*w, t.as_secs())).collect();
        assert_eq!(
            got,
            [
                (Reason::Startup, 0),
                (Reason::Interval, 60),
                (Reason::Interval, 120),
                (Reason::Change, 125),
                (Reason::Interval, 185),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_the_loop_without_another_run() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut r = recorder(0);
        tx.send(Event::FileChanged).await.expect("send");
        tx.send(Event::Stop).await.expect("send");
        assert_eq!(watch(&mut rx, timing(Some(1)), &mut r).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_runs_retry_sooner_backing_off_then_the_interval_resumes() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut r = recorder(0);
        // Start-up and the next three runs fail; the fifth converges.
        r.failing = 4;
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(200)).await;
            tx.send(Event::Stop).await.expect("send");
        });
        watch(&mut rx, timing(Some(60)), &mut r).await;
        sender.await.expect("sender");
        let got: Vec<(Reason, u64)> = r.runs.iter().map(|(w, t)| (*w, t.as_secs())).collect();
        assert_eq!(
            got,
            [
                (Reason::Startup, 0),
                (Reason::Retry, 5),
                (Reason::Retry, 15),
                (Reason::Retry, 35),
                (Reason::Retry, 75),
                (Reason::Interval, 135),
                (Reason::Interval, 195),
            ]
        );
    }

    #[test]
    fn retries_double_up_to_the_interval() {
        let secs = |n, i: Option<u64>| retry_delay(n, i.map(Duration::from_secs)).as_secs();
        assert_eq!([secs(1, None), secs(2, None), secs(3, None)], [5, 10, 20]);
        assert_eq!(secs(7, Some(60)), 60);
        assert_eq!(secs(40, None), RETRY_MAX.as_secs());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
        // Regression (issue 23, finding 12): `n * 3600` overflowed (a panic in a debug build,
        // a wrapped, short interval in a release one).
        assert!(parse_duration(&format!("{}h", u64::MAX / 1000)).is_err());
        assert!(parse_poll("0s").is_err() && parse_poll("500ms").is_err());
        assert_eq!(parse_poll("1s"), Ok(Duration::from_secs(1)));
    }
}
