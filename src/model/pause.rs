//! A function held by `scar pause`: a reserved concurrency of 0, so Lambda runs none of its
//! events (S3's go to its failure records instead, which `scar resume` replays), and two tags
//! on the function that say since when and what concurrency to give back. Pure: the tags in,
//! the hold out.

use std::collections::BTreeMap;

use super::tags::{PAUSED, PAUSED_CONCURRENCY};
use crate::manifest::types::{FunctionSpec, IgnorableField};

/// What `PAUSED_CONCURRENCY` holds for a function that had no reserved concurrency.
const NONE: &str = "none";

/// A function's hold, as its tags record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// When it was paused (RFC 3339).
    pub since: String,
    /// Its reserved concurrency before (`None`: it had none).
    pub before: Option<i32>,
}

impl Hold {
    /// The hold of a function with these tags; `None` when it is not paused.
    #[must_use]
    pub fn read(tags: &BTreeMap<String, String>) -> Option<Hold> {
        let since = tags.get(PAUSED)?.clone();
        let before = tags
            .get(PAUSED_CONCURRENCY)
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|n| *n >= 0);
        Some(Hold { since, before })
    }

    /// The tags that record it.
    #[must_use]
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PAUSED.to_owned(), self.since.clone()),
            (
                PAUSED_CONCURRENCY.to_owned(),
                self.before
                    .map_or_else(|| NONE.to_owned(), |n| n.to_string()),
            ),
        ])
    }

    /// The reserved concurrency `scar resume` gives the function back: the manifest's when
    /// it sets one scar owns, else what it had before the pause (`None`: no reservation).
    #[must_use]
    pub fn resumed(&self, spec: &FunctionSpec) -> Option<i32> {
        let owned = !spec
            .ignore_changes
            .contains(&IgnorableField::ReservedConcurrency);
        match spec.reserved_concurrency {
            Some(n) if owned => i32::try_from(n).ok(),
            _ => self.before,
        }
    }

    /// The line a plan says of it.
    #[must_use]
    pub fn note(&self, function: &str) -> String {
        format!(
            "function/{function} is paused since {} (reserved concurrency 0; its new S3 inputs wait or go to its failure records): kept so; `scar resume DIR {function}` runs it again and replays them",
            self.since
        )
    }
}

/// The tag keys of a hold.
pub const TAGS: [&str; 2] = [PAUSED, PAUSED_CONCURRENCY];

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(reserved: Option<u32>, ignore: bool) -> FunctionSpec {
        let mut s: FunctionSpec = serde_json::from_value(serde_json::json!({
            "image": "alpine:3.20", "script": "echo"
        }))
        .expect("a function spec");
        s.reserved_concurrency = reserved;
        if ignore {
            s.ignore_changes = vec![IgnorableField::ReservedConcurrency];
        }
        s
    }

    #[test]
    fn a_hold_round_trips_through_its_tags() {
        for before in [None, Some(0), Some(25)] {
            let h = Hold {
                since: "2026-12-07T10:00:00Z".into(),
                before,
            };
            assert_eq!(Hold::read(&h.tags()), Some(h));
        }
        assert_eq!(Hold::read(&BTreeMap::new()), None);
    }

    #[test]
    fn resume_gives_the_manifests_concurrency_else_the_one_before() {
        let h = Hold {
            since: "2026-12-07T10:00:00Z".into(),
            before: Some(7),
        };
        assert_eq!(h.resumed(&spec(Some(3), false)), Some(3));
        assert_eq!(h.resumed(&spec(None, false)), Some(7));
        assert_eq!(
            h.resumed(&spec(Some(3), true)),
            Some(7),
            "ignoreChanges: the live value's owner's"
        );
        let none = Hold { before: None, ..h };
        assert_eq!(none.resumed(&spec(None, false)), None);
    }
}
