//! One bounded HTTP POST, off the async runtime.
//!
//! `ureq` is blocking; each send runs on a plain thread of its own (not
//! `spawn_blocking`: dropping a runtime waits for its blocking tasks, and a
//! receiver that never answers must not hold the process). The thread ends
//! with the request's own global timeout, or with the process.

use std::time::Duration;

use tokio::sync::oneshot;

/// Longest any single send may take, connect to last byte.
pub const SEND_LIMIT: Duration = Duration::from_secs(5);

/// The answer to one POST: the status code, or why there was none.
pub type Delivery = Result<u16, String>;

/// A POST in flight; [`Pending::wait`] returns its outcome.
pub struct Pending {
    rx: oneshot::Receiver<Delivery>,
}

impl Pending {
    /// The outcome, or an error if `limit` passes first.
    pub async fn wait(self, limit: Duration) -> Delivery {
        match tokio::time::timeout(limit, self.rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err("the sending thread ended without an answer".into()),
            Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
        }
    }
}

/// Starts a POST of `body` (`content_type`) to `url`, bounded by `limit`
/// (capped at [`SEND_LIMIT`]). A 2xx status is success.
pub fn post(url: &str, content_type: &'static str, body: Vec<u8>, limit: Duration) -> Pending {
    let (tx, rx) = oneshot::channel();
    let url = url.to_string();
    let limit = limit.min(SEND_LIMIT);
    let spawned = std::thread::Builder::new()
        .name("notify-send".into())
        .spawn(move || {
            let _ = tx.send(send(&url, content_type, &body, limit));
        });
    if let Err(e) = spawned {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Err(format!("cannot start a sending thread: {e}")));
        return Pending { rx };
    }
    Pending { rx }
}

fn send(url: &str, content_type: &str, body: &[u8], limit: Duration) -> Delivery {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(limit))
        // A 4xx/5xx is an answer we report, not a transport error.
        .http_status_as_error(false)
        .user_agent(concat!("climate-jobs/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    match agent
        .post(url)
        .header("Content-Type", content_type)
        .send(body)
    {
        Ok(response) => {
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                Ok(status)
            } else {
                Err(format!("HTTP {status}"))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A URL for logs: scheme, host and port only (the path of a webhook URL
/// is its secret).
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            format!("{scheme}://{host}/…")
        }
        None => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_keeps_only_the_host() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact("http://127.0.0.1:8080?x=1"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(redact("nope"), "(not a URL)");
    }
}
