//! Jobs tell people: failure alerts (Slack, Teams, PagerDuty, Alertmanager
//! webhook) with dedup and recovery, and Healthchecks.io-compatible
//! check-in pings.
//!
//! Settings come from [`NOTIFY_ENV`] (rendered from jobs.yaml's `notify:`
//! and `heartbeat:`); URLs and keys from the secret variables they name.
//! The harness calls three hooks: [`Notifier::run_started`] once the
//! ledger row exists, [`Notifier::run_skipped`] for a run that found the
//! lock taken, [`Notifier::run_ended`] once the ledger row is final. No
//! hook changes how the run ends: a failed send is logged, and the state
//! in the database makes the next run try again.

pub mod http;
pub mod payload;
pub mod state;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::harness::UsageError;
use crate::manifest::notify::{NOTIFY_ENV, NotifySettings, NotifySpec};

use http::Pending;
use payload::{Action, Alert};

/// The kinds of alert receiver.
#[derive(Debug, Clone)]
enum Kind {
    Slack,
    Teams,
    PagerDuty {
        routing_key: String,
    },
    /// Alertmanager's webhook JSON.
    Webhook,
}

/// One alert receiver, its secrets resolved.
#[derive(Debug, Clone)]
struct Receiver {
    /// Its row in `notify_alerts`: slack, teams, pagerduty or webhook.
    name: &'static str,
    url: String,
    kind: Kind,
}

impl Receiver {
    fn body(&self, alert: &Alert) -> serde_json::Value {
        match &self.kind {
            Kind::Slack => payload::slack(alert),
            Kind::Teams => payload::teams(alert),
            Kind::PagerDuty { routing_key } => payload::pagerduty(alert, routing_key),
            Kind::Webhook => payload::alertmanager(alert),
        }
    }
}

/// Which process of a run this is.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    pub run_id: Uuid,
    /// The execution it belongs to (its own run id when alone).
    pub execution: &'a str,
    /// Not a replica of a shared execution.
    pub alone: bool,
}

/// How this process's run ended.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd<'a> {
    /// Ledger status (`succeeded`, `failed`, …).
    pub status: &'a str,
    /// None for a run that never ended itself (abandoned).
    pub exit_code: Option<i32>,
    pub error: Option<&'a str>,
    /// The JSON summary line, the body of the end ping.
    pub summary_line: &'a str,
}

/// A job's alert receivers and check-in URL.
pub struct Notifier {
    job: String,
    settings: NotifySettings,
    receivers: Vec<Receiver>,
    checkin: Option<String>,
    /// The start ping in flight; the end waits for it (bounded) so the two
    /// arrive in order.
    start_ping: Mutex<Option<Pending>>,
}

fn secret(var: &str, field: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(anyhow!(UsageError(format!(
            "{NOTIFY_ENV}: {field} names the variable {var}, which is not set \
             (it comes from the job's secrets)"
        )))),
    }
}

impl Notifier {
    /// Reads [`NOTIFY_ENV`]; None when it is unset or empty. A bad value or
    /// a missing secret variable is a configuration error (exit 2): a job
    /// that should alert must not run silently.
    pub fn from_env(job: &str) -> Result<Option<Notifier>> {
        let text = match std::env::var(NOTIFY_ENV) {
            Ok(t) if !t.trim().is_empty() => t,
            _ => return Ok(None),
        };
        let settings: NotifySettings = serde_json::from_str(&text)
            .map_err(|e| anyhow!(UsageError(format!("{NOTIFY_ENV}: {e}"))))?;
        if let Some(n) = &settings.notify
            && let Some((field, msg)) = n.problems().into_iter().next()
        {
            return Err(anyhow!(UsageError(format!("{NOTIFY_ENV}: {field}: {msg}"))));
        }
        let receivers = match &settings.notify {
            Some(n) => receivers(n)?,
            None => Vec::new(),
        };
        let checkin = match &settings.heartbeat {
            Some(h) => Some(secret(&h.url_from, "heartbeat.url_from")?),
            None => None,
        };
        Ok(Some(Notifier {
            job: job.to_string(),
            settings,
            receivers,
            checkin,
            start_ping: Mutex::new(None),
        }))
    }

    fn expected(&self, run: &RunRef) -> u16 {
        if run.alone {
            1
        } else {
            self.settings.replicas.max(1)
        }
    }

    /// After the run's ledger row is written: joins the execution (the
    /// first process of it pings start) and alerts if the job's previous
    /// run was abandoned. Bounded by `budget`.
    pub async fn run_started(&self, client: &Client, run: &RunRef<'_>, budget: Duration) {
        let until = Instant::now() + budget;
        let work = async {
            let (first, rid) = state::join(client, &self.job, run.execution, run.run_id).await?;
            if first && let Some(url) = &self.checkin {
                let ping = http::post(
                    &format!("{}/start?rid={rid}", base(url)),
                    "text/plain",
                    Vec::new(),
                    http::SEND_LIMIT,
                );
                if let Ok(mut slot) = self.start_ping.lock() {
                    *slot = Some(ping);
                }
            }
            if let Some((dead, host, error)) =
                state::abandoned_before(client, &self.job, run.run_id).await?
            {
                let end = RunEnd {
                    status: "abandoned",
                    exit_code: None,
                    error: error.as_deref(),
                    summary_line: "",
                };
                self.settle(client, dead, &host, &end, until).await;
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(budget, work).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "notify: start hook failed"),
            Err(_) => tracing::warn!("notify: start hook ran out of time"),
        }
    }

    /// A run that found another holding the lock: a log ping (it never
    /// started, so it sends no start and touches no alert).
    pub async fn run_skipped(&self, run_id: Uuid, summary_line: &str, budget: Duration) {
        if let Some(url) = &self.checkin {
            let ping = http::post(
                &format!("{}/log?rid={run_id}", base(url)),
                "application/json",
                summary_line.as_bytes().to_vec(),
                budget,
            );
            report_ping("log", ping.wait(budget).await);
        }
    }

    /// After the run's ledger row is final. The process that closes the
    /// execution (the last of its replicas; a lone run always) sends the
    /// end ping and settles the alerts for the execution's worst outcome.
    /// Bounded by `budget`; never fails the run.
    pub async fn run_ended(
        &self,
        client: &Client,
        run: &RunRef<'_>,
        end: &RunEnd<'_>,
        budget: Duration,
    ) {
        let until = Instant::now() + budget;
        let work = async {
            // This process's start ping lands before it counts itself
            // closed, so no end ping (its own or a sibling's) overtakes it.
            // Half the time left at most: a hung start leaves the end its turn.
            let started = self.start_ping.lock().ok().and_then(|mut s| s.take());
            if let Some(start) = started {
                report_ping("start", start.wait(left(until) / 2).await);
            }
            let closing = state::close(
                client,
                &self.job,
                run.execution,
                run.run_id,
                end.status,
                end.exit_code.unwrap_or(1),
                self.expected(run),
            )
            .await?;
            if !closing.last {
                tracing::info!(
                    execution = run.execution,
                    "notify: a sibling replica is still running; it closes the run"
                );
                return anyhow::Ok(());
            }
            let ping = self.checkin.as_ref().map(|url| {
                let path = match closing.exit_code {
                    0 => String::new(),
                    code => format!("/{code}"),
                };
                let url = format!("{}{path}?rid={}", base(url), closing.rid);
                let body = end.summary_line.as_bytes().to_vec();
                async move {
                    let ping = http::post(&url, "application/json", body, left(until));
                    report_ping("end", ping.wait(left(until)).await);
                }
            });
            let outcome = RunEnd {
                status: &closing.status,
                exit_code: Some(closing.exit_code),
                ..*end
            };
            let host = crate::harness::ledger::hostname();
            let alerts = self.settle(client, run.run_id, &host, &outcome, until);
            match ping {
                Some(ping) => {
                    tokio::join!(ping, alerts);
                }
                None => alerts.await,
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(budget, work).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "notify: end hook failed"),
            Err(_) => tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "notify: end hook ran out of time; unsent alerts are retried by the next run"
            ),
        }
    }

    /// Tells every receiver what it must hear about `end` (a trigger, a
    /// reminder, a resolve or nothing), each claimed in the database first.
    async fn settle(
        &self,
        client: &Client,
        run_id: Uuid,
        host: &str,
        end: &RunEnd<'_>,
        until: Instant,
    ) {
        let Some(spec) = &self.settings.notify else {
            return;
        };
        let firing = match end.status {
            "failed" | "timed_out" | "partial" | "abandoned" => true,
            "succeeded" => false,
            // skipped, cancelled: says nothing about the job's health.
            _ => return,
        };
        // Sends end a little before `until`, leaving time to record them:
        // a claim left behind would hold the next run off for its lease.
        let until = until
            .checked_sub(Duration::from_millis(400))
            .unwrap_or(until);
        let mut sends = Vec::new();
        for r in &self.receivers {
            match state::claim(client, &self.job, r.name, run_id, firing, spec.remind_every).await {
                Ok(Some(claim)) => {
                    let alert = Alert {
                        job: &self.job,
                        environment: &spec.environment,
                        status: end.status,
                        exit_code: end.exit_code,
                        run_id,
                        host,
                        error: end.error,
                        since: claim.since,
                        now: claim.now,
                        action: claim.action,
                    };
                    let body = serde_json::to_vec(&r.body(&alert)).unwrap_or_default();
                    let pending = http::post(&r.url, "application/json", body, left(until));
                    sends.push((r, claim, pending));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(receiver = r.name, error = %format!("{e:#}"), "notify: cannot claim")
                }
            }
        }
        let waits = sends
            .into_iter()
            .map(|(r, claim, pending)| async move { (r, claim, pending.wait(left(until)).await) });
        for (r, claim, outcome) in await_all(waits).await {
            let action = match claim.action {
                Action::Trigger { reminder: false } => "trigger",
                Action::Trigger { reminder: true } => "reminder",
                Action::Resolve => "resolve",
            };
            let recorded = match outcome {
                Ok(code) => {
                    tracing::info!(
                        receiver = r.name,
                        action,
                        http_status = code,
                        "notify: alert sent"
                    );
                    state::delivered(client, &self.job, r.name, run_id, &claim, end.status).await
                }
                Err(e) => {
                    tracing::warn!(
                        receiver = r.name, action, url = %http::redact(&r.url), error = %e,
                        "notify: alert not sent; the next run tries again"
                    );
                    state::not_delivered(client, &self.job, r.name, run_id, &e).await
                }
            };
            if let Err(e) = recorded {
                tracing::warn!(receiver = r.name, error = %format!("{e:#}"), "notify: cannot record the send");
            }
        }
    }
}

/// Awaits each future in turn: every send is already in flight on its own
/// thread, so this takes as long as the slowest, not the sum.
async fn await_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futures {
        out.push(f.await);
    }
    out
}

fn receivers(n: &NotifySpec) -> Result<Vec<Receiver>> {
    let mut out = Vec::new();
    if let Some(r) = &n.slack {
        out.push(Receiver {
            name: "slack",
            url: secret(&r.url_from, "notify.slack.url_from")?,
            kind: Kind::Slack,
        });
    }
    if let Some(r) = &n.teams {
        out.push(Receiver {
            name: "teams",
            url: secret(&r.url_from, "notify.teams.url_from")?,
            kind: Kind::Teams,
        });
    }
    if let Some(r) = &n.pagerduty {
        out.push(Receiver {
            name: "pagerduty",
            url: r.url.clone(),
            kind: Kind::PagerDuty {
                routing_key: secret(&r.routing_key_from, "notify.pagerduty.routing_key_from")?,
            },
        });
    }
    if let Some(r) = &n.webhook {
        out.push(Receiver {
            name: "webhook",
            url: secret(&r.url_from, "notify.webhook.url_from")?,
            kind: Kind::Webhook,
        });
    }
    for r in &out {
        if !(r.url.starts_with("https://") || r.url.starts_with("http://")) {
            return Err(anyhow!(UsageError(format!(
                "{NOTIFY_ENV}: the {} URL is not an http(s) URL",
                r.name
            ))))
            .context("reading the notify settings");
        }
    }
    Ok(out)
}

/// The ping URL without a trailing slash.
fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

fn report_ping(which: &str, outcome: http::Delivery) {
    match outcome {
        Ok(code) => tracing::info!(ping = which, http_status = code, "notify: check-in sent"),
        Err(e) => tracing::warn!(ping = which, error = %e, "notify: check-in not sent"),
    }
}
