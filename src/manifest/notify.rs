//! `notify:` and `heartbeat:` of a job in jobs.yaml: who is told when a run
//! fails or recovers, and the check-in URL an outside monitor watches.
//!
//! Neither holds a URL or key: each names an environment variable the job
//! takes from `secrets:`. `jobctl render` passes both blocks (and the job's
//! replica count) to the container as one JSON variable,
//! [`NOTIFY_ENV`]; the job binary reads it at start (`crate::notify`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SecretRef;
use crate::harness::args::{format_duration, parse_duration};

/// The variable a job binary reads its notify/heartbeat settings from.
pub const NOTIFY_ENV: &str = "CLIMATE_JOBS_NOTIFY";

/// PagerDuty's Events API v2 endpoint (the EU service is
/// `https://events.eu.pagerduty.com/v2/enqueue`).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const DEFAULT_ENVIRONMENT: &str = "production";
pub const DEFAULT_REMIND_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Below this a failing hourly job would remind on every run anyway.
pub const MIN_REMIND_EVERY: Duration = Duration::from_secs(60);

/// `notify:` — failure alerts, one per receiver kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// Part of PagerDuty's dedup key and of every message:
    /// `climate-jobs/<environment>/<job>`.
    #[serde(default = "default_environment")]
    pub environment: String,
    /// A job still failing is announced again after this long.
    #[serde(default = "default_remind_every", with = "duration_text")]
    pub remind_every: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<UrlFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<UrlFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDutySpec>,
    /// Alertmanager's webhook JSON, for receivers that accept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<UrlFrom>,
}

/// A receiver whose URL is a secret: the variable holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlFrom {
    pub url_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySpec {
    /// The variable holding the integration's routing key.
    pub routing_key_from: String,
    /// The Events API endpoint (not a secret).
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
}

/// `heartbeat:` — Healthchecks.io-compatible check-in pings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    /// The variable holding the ping URL, e.g. `https://hc-ping.com/<uuid>`.
    pub url_from: String,
}

/// What a job binary reads from [`NOTIFY_ENV`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Processes of one execution: the last of them to finish closes the run.
    #[serde(default = "one")]
    pub replicas: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatSpec>,
}

fn one() -> u16 {
    1
}
fn default_environment() -> String {
    DEFAULT_ENVIRONMENT.into()
}
fn default_remind_every() -> Duration {
    DEFAULT_REMIND_EVERY
}
fn default_pagerduty_url() -> String {
    PAGERDUTY_EVENTS_URL.into()
}

mod duration_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

impl NotifySpec {
    /// Every secret variable the receivers read, with the field naming it.
    pub fn secret_vars(&self) -> Vec<(&'static str, &str)> {
        let mut vars = Vec::new();
        if let Some(r) = &self.slack {
            vars.push(("notify.slack.url_from", r.url_from.as_str()));
        }
        if let Some(r) = &self.teams {
            vars.push(("notify.teams.url_from", r.url_from.as_str()));
        }
        if let Some(r) = &self.pagerduty {
            vars.push((
                "notify.pagerduty.routing_key_from",
                r.routing_key_from.as_str(),
            ));
        }
        if let Some(r) = &self.webhook {
            vars.push(("notify.webhook.url_from", r.url_from.as_str()));
        }
        vars
    }

    /// Problems as (field, message); empty when valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.secret_vars().is_empty() {
            out.push((
                "notify".into(),
                "names no receiver: add slack, teams, pagerduty or webhook".into(),
            ));
        }
        if self.environment.is_empty()
            || !self
                .environment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            out.push((
                "notify.environment".into(),
                format!(
                    "{:?}: expected letters, digits, '-', '_' or '.' (it goes into PagerDuty's dedup key)",
                    self.environment
                ),
            ));
        }
        if self.remind_every < MIN_REMIND_EVERY {
            out.push((
                "notify.remind_every".into(),
                format!(
                    "{} is below {}",
                    format_duration(self.remind_every),
                    format_duration(MIN_REMIND_EVERY)
                ),
            ));
        }
        if let Some(pd) = &self.pagerduty
            && !(pd.url.starts_with("https://") || pd.url.starts_with("http://"))
        {
            out.push((
                "notify.pagerduty.url".into(),
                format!("{:?}: expected an http(s) URL", pd.url),
            ));
        }
        out
    }
}

/// Reads `notify:` and `heartbeat:` of one job and checks that each
/// variable they name comes from the job's `secrets:`. Problems are
/// (field, message).
pub fn parse(
    notify: Option<&Value>,
    heartbeat: Option<&Value>,
    secrets: Option<&BTreeMap<String, SecretRef>>,
    problems: &mut Vec<(String, String)>,
) -> (Option<NotifySpec>, Option<HeartbeatSpec>) {
    let notify = notify.and_then(|v| match serde_json::from_value::<NotifySpec>(v.clone()) {
        Ok(spec) => {
            problems.extend(spec.problems());
            Some(spec)
        }
        Err(e) => {
            problems.push(("notify".into(), e.to_string()));
            None
        }
    });
    let heartbeat =
        heartbeat.and_then(
            |v| match serde_json::from_value::<HeartbeatSpec>(v.clone()) {
                Ok(spec) => Some(spec),
                Err(e) => {
                    problems.push(("heartbeat".into(), e.to_string()));
                    None
                }
            },
        );
    let mut vars: Vec<(&str, &str)> = notify.as_ref().map(|n| n.secret_vars()).unwrap_or_default();
    if let Some(h) = &heartbeat {
        vars.push(("heartbeat.url_from", h.url_from.as_str()));
    }
    if let Some(secrets) = secrets {
        for (field, var) in vars {
            if !secrets.contains_key(var) {
                problems.push((
                    field.into(),
                    format!(
                        "{var:?} is not in this job's `secrets:`: webhook URLs and keys are \
                         secrets (add {var}: {{secret: NAME, key: KEY}})"
                    ),
                ));
            }
        }
    }
    (notify, heartbeat)
}

/// The value of [`NOTIFY_ENV`] for a job, or None when it has neither block.
pub fn rendered_value(
    replicas: u16,
    notify: Option<&NotifySpec>,
    heartbeat: Option<&HeartbeatSpec>,
) -> Option<String> {
    if notify.is_none() && heartbeat.is_none() {
        return None;
    }
    let settings = NotifySettings {
        replicas,
        notify: notify.cloned(),
        heartbeat: heartbeat.cloned(),
    };
    serde_json::to_string(&settings).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(names: &[&str]) -> BTreeMap<String, SecretRef> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    SecretRef {
                        secret: "s".into(),
                        key: "k".into(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn every_receiver_parses_with_defaults() {
        let v = serde_json::json!({
            "slack": {"url_from": "SLACK_URL"},
            "teams": {"url_from": "TEAMS_URL"},
            "pagerduty": {"routing_key_from": "PD_KEY"},
            "webhook": {"url_from": "AM_URL"},
        });
        let hb = serde_json::json!({"url_from": "HC_URL"});
        let mut problems = Vec::new();
        let s = secrets(&["SLACK_URL", "TEAMS_URL", "PD_KEY", "AM_URL", "HC_URL"]);
        let (n, h) = parse(Some(&v), Some(&hb), Some(&s), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let n = n.unwrap();
        assert_eq!(n.environment, "production");
        assert_eq!(n.remind_every, DEFAULT_REMIND_EVERY);
        assert_eq!(n.pagerduty.as_ref().unwrap().url, PAGERDUTY_EVENTS_URL);
        let text = rendered_value(3, Some(&n), h.as_ref()).unwrap();
        let back: NotifySettings = serde_json::from_str(&text).unwrap();
        assert_eq!(back.replicas, 3);
        assert_eq!(back.notify.unwrap(), n);
        assert_eq!(back.heartbeat.unwrap().url_from, "HC_URL");
    }

    #[test]
    fn a_variable_not_in_secrets_is_named() {
        let v = serde_json::json!({"slack": {"url_from": "SLACK_URL"}, "remind_every": "10s"});
        let mut problems = Vec::new();
        parse(Some(&v), None, Some(&secrets(&[])), &mut problems);
        let fields: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(fields, ["notify.remind_every", "notify.slack.url_from"]);
        assert!(problems[1].1.contains("not in this job's `secrets:`"));
    }

    #[test]
    fn an_unknown_key_and_no_receiver_are_problems() {
        let mut problems = Vec::new();
        parse(
            Some(&serde_json::json!({"slak": {"url_from": "X"}})),
            None,
            None,
            &mut problems,
        );
        assert!(
            problems[0].1.contains("unknown field `slak`"),
            "{problems:?}"
        );
        let mut problems = Vec::new();
        parse(Some(&serde_json::json!({})), None, None, &mut problems);
        assert!(problems[0].1.contains("names no receiver"), "{problems:?}");
    }
}
