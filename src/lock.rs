//! The stack lock: one writer per stack across machines. The lock is an S3 object written
//! with a conditional put (`If-None-Match: *`) and kept alive by a lease that its holder
//! renews; a holder that crashed stops renewing, and once the lease has run out the next
//! writer takes the lock over (a conditional put on the expired record's ETag, so two
//! writers cannot both win). This module is the pure part: the record, expiry, messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Default lease: how long a lock outlives its last renewal. The holder renews it every
/// quarter of that.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// What a lock's holder is doing. Records written by another scar version may name an
/// operation this one does not know: kept as written ([`Operation::Other`]), so such a lock
/// still holds and its message still says what runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `scar apply`.
    Apply,
    /// `scar destroy`.
    Destroy,
    /// `scar adopt`.
    Adopt,
    /// `scar watch`.
    Watch,
    /// `scar pause`.
    Pause,
    /// `scar resume`.
    Resume,
    /// A bucket's notification configuration being merged (the per-bucket lease).
    Notification,
    /// Anything else, as written.
    Other(String),
}

impl Operation {
    /// As written in the record and shown in messages.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Operation::Apply => "apply",
            Operation::Destroy => "destroy",
            Operation::Adopt => "adopt",
            Operation::Watch => "watch",
            Operation::Pause => "pause",
            Operation::Resume => "resume",
            Operation::Notification => "notification",
            Operation::Other(s) => s,
        }
    }

    fn parse(s: String) -> Operation {
        match s.as_str() {
            "apply" => Operation::Apply,
            "destroy" => Operation::Destroy,
            "adopt" => Operation::Adopt,
            "watch" => Operation::Watch,
            "pause" => Operation::Pause,
            "resume" => Operation::Resume,
            "notification" => Operation::Notification,
            _ => Operation::Other(s),
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Operation::parse)
    }
}

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// The lock's id, for `scar unlock`.
    pub id: String,
    /// The stack locked.
    pub stack: String,
    /// `user@host`.
    pub holder: String,
    /// The holder's process id.
    pub pid: u32,
    /// What the holder is doing.
    pub operation: Operation,
    /// When the lock was taken (seconds since the Unix epoch).
    pub started: u64,
    /// When the lease runs out unless renewed (seconds since the Unix epoch).
    pub expires: u64,
    /// The scar version of the holder.
    pub version: String,
    /// The lease in seconds: with the time S3 last wrote the record, it tells expiry by the
    /// server's clock. Absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
}

/// Seconds since the Unix epoch, now.
#[must_use]
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LockRecord {
    /// A new record for this process.
    #[must_use]
    pub fn new(stack: &str, operation: Operation, lease: Duration, at: u64) -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".into());
        Self {
            id: new_id(),
            stack: stack.to_owned(),
            holder: format!("{user}@{host}"),
            pid: std::process::id(),
            operation,
            started: at,
            expires: at + lease.as_secs(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            lease_secs: Some(lease.as_secs()),
        }
    }

    /// True once the lease has run out, judged by the server's clock when it is known:
    /// `server` is S3's time now and the time it last wrote the record (both from S3's
    /// answers), so writers whose clocks disagree still agree on expiry. Without them (or for
    /// a record with no lease recorded), by `local_now` against `expires`.
    #[must_use]
    pub fn expired_by(&self, local_now: u64, server: Option<(u64, u64)>) -> bool {
        match (self.lease_secs, server) {
            (Some(lease), Some((now, written))) => now >= written.saturating_add(lease),
            _ => self.expired(local_now),
        }
    }

    /// True once the lease has run out at `at`.
    #[must_use]
    pub fn expired(&self, at: u64) -> bool {
        at >= self.expires
    }

    /// What a writer that found this lock is told: who, what, since when, and how to break it.
    #[must_use]
    pub fn conflict_message(&self, dir: &str, at: u64) -> String {
        format!(
            "stack `{}` is locked: {} (pid {}) is running `scar {}` since {} ({} ago); its lease runs until {}. \
             If that run is gone, wait for the lease to run out (scar then takes the lock over) or break it now with `scar unlock {dir} {}`",
            self.stack,
            self.holder,
            self.pid,
            self.operation,
            rfc3339(self.started),
            human(at.saturating_sub(self.started)),
            rfc3339(self.expires),
            self.id
        )
    }
}

/// A random-enough lock id: 16 hex digits from the clock, the process and a counter, mixed by
/// the standard library's randomly keyed hasher.
#[must_use]
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// `1h 2m`, `3m 4s`, `5s`.
#[must_use]
pub fn human(secs: u64) -> String {
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

pub use scar_contract::records::rfc3339;

/// `2026-11-27T14:05:00Z` (and what follows the seconds: a fraction, a `Z`) as seconds since
/// the epoch; the inverse of [`rfc3339`]. `None` for anything else.
#[must_use]
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" || s.get(10..11)? != "T" {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_back() {
        for secs in [0, 951_782_400, 1_796_647_200, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2026-12-07T12:40:00.000Z"),
            Some(1_796_647_200)
        );
        assert_eq!(parse_rfc3339("2026-13-07T12:40:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_795_500), "2026-11-27T16:05:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human(59), "59s");
        assert_eq!(human(125), "2m 5s");
        assert_eq!(human(7_500), "2h 5m");
    }

    #[test]
    fn a_lease_runs_out_and_the_message_says_how_to_break_it() {
        let r = LockRecord::new("demo", Operation::Apply, Duration::from_secs(120), 1000);
        assert!(!r.expired(1119));
        assert!(r.expired(1120));
        let m = r.conflict_message("manifests/demo", 1060);
        assert!(m.contains("`scar apply`"), "{m}");
        assert!(m.contains("1m 0s ago"), "{m}");
        assert!(
            m.contains(&format!("scar unlock manifests/demo {}", r.id)),
            "{m}"
        );
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn lease_expiry_uses_the_local_clock() {
        // A holder whose clock runs a day ahead wrote `expires` a day out; by S3's clock the
        // record was last written 3 s ago with a 2 s lease: it has run out.
        let skewed = LockRecord::new(
            "demo",
            Operation::Apply,
            Duration::from_secs(2),
            1_000 + 86_400,
        );
        assert!(!skewed.expired(1_003));
        assert!(skewed.expired_by(1_003, Some((1_003, 1_000))));
        assert!(!skewed.expired_by(1_003, Some((1_001, 1_000))));
        // A record from an older scar (no lease recorded) falls back to `expires`.
        let old = LockRecord {
            lease_secs: None,
            ..skewed
        };
        assert!(!old.expired_by(1_003, Some((1_003, 1_000))));
    }

    #[test]
    fn operations_read_back_as_written_even_unknown_ones() {
        for op in [
            Operation::Apply,
            Operation::Destroy,
            Operation::Watch,
            Operation::Pause,
            Operation::Resume,
        ] {
            let json = serde_json::to_string(&op).expect("serialise");
            assert_eq!(json, format!("\"{op}\""));
            assert_eq!(serde_json::from_str::<Operation>(&json).ok(), Some(op));
        }
        // A newer scar's lock still holds, and says what it runs.
        let newer: LockRecord = serde_json::from_str(
            r#"{"id":"x","stack":"demo","holder":"ci@build","pid":1,"operation":"rollback",
                "started":1000,"expires":1120,"version":"9.0.0"}"#,
        )
        .expect("a record of another version");
        assert_eq!(newer.operation, Operation::Other("rollback".into()));
        assert!(
            newer
                .conflict_message("d", 1010)
                .contains("running `scar rollback`")
        );
    }
}
