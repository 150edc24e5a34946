//! What "ready" means, as pure predicates over what AWS reports, in one type, [`Readiness`];
//! the one poll loop lives with the adapter (`aws::page::wait_until`). A Lambda function takes the next change only when `State=Active` and
//! `LastUpdateStatus=Successful` (reference/peers.md §4.3: every peer tool shipped a bug here).

/// Whether a resource is ready for the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Still settling: poll again. What was seen, for a timeout's message.
    Pending(String),
    /// Will never be ready: the reason AWS gave.
    Failed(String),
}

/// A Lambda function's readiness from its `State`, `LastUpdateStatus` and reason (a failure
/// carries the reason).
#[must_use]
pub fn function_readiness(
    state: Option<&str>,
    last_update: Option<&str>,
    reason: Option<&str>,
) -> Readiness {
    let why = || reason.unwrap_or("no reason given").to_owned();
    match (state, last_update) {
        (Some("Failed"), _) | (_, Some("Failed")) => Readiness::Failed(why()),
        (Some("Active") | None, Some("Successful") | None) => Readiness::Ready,
        _ => Readiness::Pending(format!(
            "{}, {}",
            state.unwrap_or("no state"),
            last_update.unwrap_or("no update status")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_and_successful_is_ready() {
        assert_eq!(
            function_readiness(Some("Active"), Some("Successful"), None),
            Readiness::Ready
        );
        assert_eq!(
            function_readiness(Some("Active"), None, None),
            Readiness::Ready
        );
    }

    #[test]
    fn active_but_updating_is_not() {
        assert_eq!(
            function_readiness(Some("Active"), Some("InProgress"), None),
            Readiness::Pending("Active, InProgress".into())
        );
        assert_eq!(
            function_readiness(Some("Pending"), None, None),
            Readiness::Pending("Pending, no update status".into())
        );
        assert!(matches!(
            function_readiness(Some("Inactive"), None, None),
            Readiness::Pending(_)
        ));
    }

    #[test]
    fn failures_carry_the_reason() {
        assert_eq!(
            function_readiness(Some("Active"), Some("Failed"), Some("image not found")),
            Readiness::Failed("image not found".into())
        );
    }
}
