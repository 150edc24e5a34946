//! Stale saved plans: a plan records the fingerprint of each live resource it read (Lambda
//! RevisionId, a hash of a notification entry); if any moved, or a resource the plan would
//! create now exists, or one it would change is gone, the plan is refused whole.

use crate::model::live::LiveState;
use crate::plan::{Action, Plan};

/// Why the plan no longer matches AWS; empty when it still does.
#[must_use]
pub fn stale_reasons(plan: &Plan, live: &LiveState) -> Vec<String> {
    let mut out = Vec::new();
    for s in plan.changes() {
        let now = live.get(&s.address);
        match (s.action, now) {
            (Action::Create, Some(_)) => out.push(format!("{} now exists", s.address)),
            (Action::Create, None) => {}
            (_, None) => out.push(format!("{} no longer exists", s.address)),
            (_, Some(l)) => {
                if s.expected_fingerprint.is_some() && l.fingerprint != s.expected_fingerprint {
                    out.push(format!(
                        "{} changed since the plan was made ({} -> {})",
                        s.address,
                        s.expected_fingerprint.as_deref().unwrap_or("-"),
                        l.fingerprint.as_deref().unwrap_or("-")
                    ));
                }
            }
        }
    }
    out
}
