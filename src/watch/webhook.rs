//! Notifications: a JSON document POSTed to the webhook a user names (`--notify URL`) when a
//! run fails and when a run sets back changes made outside scar. One attempt with a time
//! limit; a webhook that cannot be reached is logged and never stops the watcher. Nothing
//! secret is sent: the stack, the run, the outcome, addresses, and the commit.

use std::time::Duration;

/// How long a webhook may take to answer.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most of a webhook's answer read (it is only logged by its status).
const MAX_ANSWER: usize = 64 * 1024;

/// Checks a `--notify` URL: `https://`, or `http://` to a loopback IP address only. A webhook
/// URL is a secret (Slack's and Teams' are), and the notification crosses the network.
///
/// # Errors
/// When the URL is not `https://` (nor `http://` to 127.0.0.0/8 or `[::1]`).
pub fn parse_url(url: &str) -> Result<String, String> {
    match crate::text::url_parts(url) {
        Some(("https://", _, host, _)) if !host.is_empty() => Ok(url.to_owned()),
        Some(("http://", _, host, _)) if is_loopback(host) => Ok(url.to_owned()),
        Some(("http://", ..)) => Err(format!(
            "{} is plain HTTP: a webhook URL is a secret and its notifications cross the network; use https:// (http:// is taken only for a loopback address such as 127.0.0.1)",
            host_of(url)
        )),
        _ => Err("--notify takes an https:// URL".to_owned()),
    }
}

/// True for `127.x.x.x[:port]` and `[::1][:port]`, as IP addresses (a name is not enough).
fn is_loopback(host: &str) -> bool {
    let without_port = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    crate::text::is_loopback_ip(without_port)
}

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
        crate::net::post(
            url,
            &[("content-type", "application/json")],
            body,
            MAX_ANSWER,
        ),
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
    fn a_webhook_is_https_or_on_loopback() {
        // Regression (issue 23, finding 12): `--notify http://hooks.example.org/...` was taken
        // silently, sending the URL's token and every notification in the clear.
        assert!(parse_url("https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(parse_url("http://127.0.0.1:9/hook").is_ok());
        assert!(parse_url("http://[::1]:9/hook").is_ok());
        for refused in [
            "http://hooks.example.org/services/tok3n",
            "http://localhost:9/hook",
            "http://127.0.0.1.example.org/hook",
            "ftp://x/y",
            "hooks.slack.com/x",
        ] {
            let e = parse_url(refused).expect_err(refused);
            assert!(!e.contains("tok3n"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_webhooks_answer_is_read_no_further_than_the_cap() {
        // Regression (issue 23, finding 12): the answer was read whole, however long.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
            // Endless, unless the reader stops.
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
        });
        let answer = crate::net::post(&url, &[], Vec::new(), MAX_ANSWER).await;
        assert!(
            answer
                .as_ref()
                .is_err_and(|e| e.contains("at most 65536 bytes")),
            "{answer:?}"
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
