//! Notifications: a JSON document POSTed to the webhook a user names (`--notify URL`) when a
//! run fails and when a run sets back changes made outside scar. One attempt with a time
//! limit; a webhook that cannot be reached is logged and never stops the watcher. Nothing
//! secret is sent: the stack, the run, the outcome, addresses, and the commit.

use std::time::Duration;

/// How long a webhook may take to answer.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A run failed to converge (a step failed, AWS could not be read, the plan was refused).
    Failed,
    /// A run set back resources changed outside scar.
    DriftCorrected,
}

impl Kind {
    /// The `event` field.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Failed => "run_failed",
            Kind::DriftCorrected => "drift_corrected",
        }
    }
}

/// The document sent.
#[must_use]
pub fn document(
    kind: Kind,
    stack: &str,
    run: usize,
    outcome: &str,
    resources: &[String],
    commit: Option<&str>,
    unix: f64,
) -> serde_json::Value {
    serde_json::json!({
        "event": kind.as_str(),
        "stack": stack,
        "run": run,
        "outcome": outcome,
        "resources": resources,
        "commit": commit,
        "time_unix": unix,
        "text": match kind {
            Kind::Failed => format!("scar watch: run {run} of stack {stack} failed: {outcome}"),
            Kind::DriftCorrected => format!(
                "scar watch: run {run} of stack {stack} set back {} resource(s) changed outside scar: {}",
                resources.len(),
                resources.join(", ")
            ),
        },
    })
}

/// POSTs `doc` to `url`; a failure is logged as a warning and otherwise ignored.
pub async fn send(url: &str, doc: &serde_json::Value) {
    let body = doc.to_string().into_bytes();
    let sent = tokio::time::timeout(
        TIME_LIMIT,
        crate::net::post(url, &[("content-type", "application/json")], body),
    )
    .await;
    match sent {
        Ok(Ok((status, _))) if (200..300).contains(&status) => {
            tracing::info!(event = doc["event"].as_str(), "notification sent");
        }
        Ok(Ok((status, _))) => {
            tracing::warn!(status, "the notification webhook answered with an error");
        }
        // A webhook URL is a secret (Slack's, Teams'): the log names its host only.
        Ok(Err(e)) => tracing::warn!(
            error = %e.replace(url, &host_of(url)),
            "the notification webhook could not be reached"
        ),
        Err(_) => tracing::warn!("the notification webhook did not answer within 10 s"),
    }
}

/// `scheme://host/...` of `url`: what logs may show of a webhook.
#[must_use]
pub fn host_of(url: &str) -> String {
    match crate::text::url_parts(url) {
        Some((scheme, _, host, _)) => format!("{scheme}{host}/..."),
        None => "(webhook)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_url_shows_its_host_only() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/..."
        );
        assert_eq!(
            host_of("http://u:p@127.0.0.1:9/x"),
            "http://127.0.0.1:9/..."
        );
    }

    #[test]
    fn the_document_says_what_happened() {
        let d = document(
            Kind::DriftCorrected,
            "wc",
            3,
            "applied",
            &["function/split".into()],
            Some("abc1234"),
            1.0,
        );
        assert_eq!(d["event"], "drift_corrected");
        assert_eq!(d["resources"][0], "function/split");
        assert!(
            d["text"]
                .as_str()
                .is_some_and(|t| t.contains("set back 1 resource"))
        );
    }
}
