//! What each receiver is sent, in its provider's documented shape:
//! Slack incoming webhook (`text` + Block Kit `blocks`), Microsoft Teams
//! workflow webhook (a `message` with one Adaptive Card attachment),
//! PagerDuty Events API v2 (`trigger`/`resolve` with a `dedup_key`), and
//! Alertmanager's webhook JSON (version "4") for generic receivers.
//!
//! Pure: builds JSON from an [`Alert`]; sending is `super::http`.

use crate::fingerprint::Fnv64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// Trigger (first time or a reminder) or resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Trigger { reminder: bool },
    Resolve,
}

/// One job's alert as every receiver describes it.
#[derive(Debug, Clone)]
pub struct Alert<'a> {
    pub job: &'a str,
    pub environment: &'a str,
    /// Ledger status of the run that decided it (`failed`, `succeeded`…).
    pub status: &'a str,
    pub exit_code: Option<i32>,
    pub run_id: Uuid,
    pub host: &'a str,
    pub error: Option<&'a str>,
    /// When the job started failing.
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub action: Action,
}

const NAME: &str = "climate-jobs";
const ALERT_NAME: &str = "ClimateJobFailed";

impl Alert<'_> {
    /// `climate-jobs/<environment>/<job>`: PagerDuty's dedup key, and the
    /// alert's identity everywhere else.
    pub fn key(&self) -> String {
        format!("{NAME}/{}/{}", self.environment, self.job)
    }

    /// critical: retrying cannot help (bad flags/config 2, bad input 65);
    /// warning: finished with dead letters (3); error: the rest.
    pub fn severity(&self) -> &'static str {
        match self.exit_code {
            Some(2 | 65) => "critical",
            Some(3) => "warning",
            _ => "error",
        }
    }

    fn outcome(&self) -> String {
        match self.exit_code {
            Some(code) => format!("{} (exit {code})", self.status),
            None => self.status.to_string(),
        }
    }

    /// One line saying what happened.
    pub fn headline(&self) -> String {
        match self.action {
            Action::Trigger { reminder: false } => {
                format!("{} failed: {}", self.key(), self.outcome())
            }
            Action::Trigger { reminder: true } => format!(
                "{} still failing since {}: {}",
                self.key(),
                rfc3339(self.since),
                self.outcome()
            ),
            Action::Resolve => format!("{} recovered: {}", self.key(), self.outcome()),
        }
    }

    fn details(&self) -> String {
        let mut d = format!("run {} on {}", self.run_id, self.host);
        if let Some(e) = self.error {
            d.push_str(": ");
            d.push_str(e);
        }
        d
    }

    /// Alertmanager's fingerprint is 16 hex digits of a label hash; this is
    /// FNV-1a of the alert key (stable across runs and processes).
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", Fnv64::of(self.key().as_bytes()))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Slack incoming webhook: `text` is the notification fallback, `blocks`
/// the message.
pub fn slack(a: &Alert) -> Value {
    let icon = match a.action {
        Action::Resolve => ":white_check_mark:",
        Action::Trigger { .. } => ":rotating_light:",
    };
    json!({
        "text": a.headline(),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", a.headline())}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": a.details()}]},
        ],
    })
}

/// Microsoft Teams "post to a channel when a webhook request is received"
/// workflow: a message whose attachment is an Adaptive Card.
pub fn teams(a: &Alert) -> Value {
    let color = match a.action {
        Action::Resolve => "Good",
        Action::Trigger { .. } => "Attention",
    };
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": a.headline(), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
                    {"type": "FactSet", "facts": [
                        {"title": "Job", "value": a.job},
                        {"title": "Environment", "value": a.environment},
                        {"title": "Status", "value": a.outcome()},
                        {"title": "Since", "value": rfc3339(a.since)},
                    ]},
                    {"type": "TextBlock", "text": a.details(), "wrap": true, "isSubtle": true},
                ],
            },
        }],
    })
}

/// PagerDuty Events API v2: a trigger carries a payload; a resolve only
/// the routing key, action and dedup key.
pub fn pagerduty(a: &Alert, routing_key: &str) -> Value {
    match a.action {
        Action::Resolve => json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": a.key(),
        }),
        Action::Trigger { .. } => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": a.key(),
            "payload": {
                "summary": truncate(&a.headline(), 1024),
                "source": a.host,
                "severity": a.severity(),
                "timestamp": rfc3339(a.now),
                "component": a.job,
                "group": a.environment,
                "class": a.status,
                "custom_details": {
                    "run_id": a.run_id,
                    "exit_code": a.exit_code,
                    "error": a.error,
                    "failing_since": rfc3339(a.since),
                },
            },
        }),
    }
}

/// Alertmanager's webhook JSON (version "4"), one alert per message.
pub fn alertmanager(a: &Alert) -> Value {
    let (status, ends_at) = match a.action {
        Action::Resolve => ("resolved", rfc3339(a.now)),
        // Alertmanager's zero time: still firing.
        Action::Trigger { .. } => ("firing", "0001-01-01T00:00:00Z".to_string()),
    };
    let labels = json!({
        "alertname": ALERT_NAME,
        "service": NAME,
        "job": a.job,
        "environment": a.environment,
        "severity": a.severity(),
    });
    let annotations = json!({
        "summary": a.headline(),
        "description": a.details(),
        "run_id": a.run_id.to_string(),
        "status": a.status,
        "exit_code": a.exit_code.map(|c| c.to_string()).unwrap_or_default(),
    });
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{ALERT_NAME}\", job=\"{}\"}}", a.job),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": NAME,
        "groupLabels": {"alertname": ALERT_NAME, "job": a.job},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(a.since),
            "endsAt": ends_at,
            "generatorURL": "",
            "fingerprint": a.fingerprint(),
        }],
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(action: Action) -> Alert<'static> {
        Alert {
            job: "canary",
            environment: "staging",
            status: "partial",
            exit_code: Some(3),
            run_id: Uuid::nil(),
            host: "pod-1",
            error: Some("1 of 10 task(s) failed"),
            since: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            now: DateTime::from_timestamp(1_700_000_600, 0).unwrap(),
            action,
        }
    }

    #[test]
    fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
        let t = pagerduty(&alert(Action::Trigger { reminder: false }), "KEY");
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["dedup_key"], "climate-jobs/staging/canary");
        assert_eq!(t["payload"]["severity"], "warning");
        assert_eq!(t["payload"]["source"], "pod-1");
        let r = pagerduty(&alert(Action::Resolve), "KEY");
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn severity_follows_the_exit_code() {
        let mut a = alert(Action::Resolve);
        for (code, severity) in [
            (Some(2), "critical"),
            (Some(65), "critical"),
            (Some(3), "warning"),
            (Some(1), "error"),
            (Some(124), "error"),
            (None, "error"),
        ] {
            a.exit_code = code;
            assert_eq!(a.severity(), severity, "{code:?}");
        }
    }

    #[test]
    fn alertmanager_resolved_has_an_end_time_and_the_same_fingerprint() {
        let f = alertmanager(&alert(Action::Trigger { reminder: false }));
        let r = alertmanager(&alert(Action::Resolve));
        assert_eq!(f["version"], "4");
        assert_eq!(f["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(r["status"], "resolved");
        assert_eq!(r["alerts"][0]["endsAt"], "2023-11-14T22:23:20.000Z");
        assert_eq!(f["alerts"][0]["fingerprint"], r["alerts"][0]["fingerprint"]);
        assert_eq!(f["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
    }

    #[test]
    fn a_reminder_says_since_when() {
        let s = slack(&alert(Action::Trigger { reminder: true }));
        assert!(
            s["text"]
                .as_str()
                .unwrap()
                .contains("still failing since 2023-11-14T22:13:20"),
            "{s}"
        );
    }
}
