//! `run(job)`: the run contract, start to exit, for any `Job`.
//!
//! Two runtimes: tasks run on a multi-thread runtime of their own; the
//! controller (deadline, signals, lock, ledger, heartbeat, dead letters)
//! runs on a current-thread runtime on the main thread with its own
//! database connection. A task that blocks its worker thread can then
//! never stop the run from noticing its deadline or the task's own timeout
//! (the task loop, `batch.rs`, gives up on it and moves new tasks to a
//! fresh runtime), and the watchdog thread covers what even the controller
//! cannot. Every database call of the controller's own is bounded
//! (`database::bounded`): a database that stops answering ends the run 69.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tracing::Instrument;
use uuid::Uuid;

use super::batch::{Batch, beat};
use super::chunks::ChunkBook;
use super::database::{Database, bounded};
use super::deadline::{RunDeadline, Watchdog};
use super::errors::{self, FailureKind};
use super::fault::{self, FaultPlan};
use super::job::{Job, PlanContext};
use super::ledger::{self, RunEnd, RunLedger, RunMetrics};
use super::outcome::{ExitCode, RunStatus};
use super::shutdown::{StopCause, StopSignal};
use super::singleton;
use super::summary::RunSummary;
use super::telemetry;
use super::workers::Workers;
use crate::notify::{self, Notifier};

/// Runs a job under the full contract and ends the process with its exit
/// code. Never returns: a task blocking a thread must not keep the process
/// alive while the runtime waits for it.
pub fn run<J: Job>(job: J) -> ! {
    let started = Instant::now();
    let run_id = Uuid::now_v7();
    let common = job.common().clone();
    telemetry::init(common.log.log_format);
    let span = tracing::info_span!("run", job = job.name(), run_id = %run_id);
    let _entered = span.enter();

    let deadline = RunDeadline::new(started, common.run.timeout, common.run.grace);
    let watchdog = Watchdog::arm(
        deadline.at + deadline.grace,
        ExitCode::DeadlineExceeded,
        "run deadline exceeded",
        serde_json::json!({
            "job": job.name(), "run_id": run_id, "dry_run": common.run.dry_run,
        }),
    );
    let name = job.name();
    let dry_run = common.run.dry_run;
    let job = Arc::new(job);
    let ending = match runtimes(usize::from(common.run.concurrency)) {
        Ok((controller, workers)) => {
            let c = Controller {
                job: job.clone(),
                run_id,
                deadline,
                watchdog: watchdog.clone(),
                workers: Mutex::new(workers),
            };
            // `Workers` never drops a runtime (that would wait for blocked
            // worker threads).
            controller.block_on(c.run().instrument(span.clone()))
        }
        Err(e) => Ending::error(e, RunMetrics::default()),
    };
    let counters = job.counters();
    watchdog.disarm();

    let summary = summary_of(name, run_id, &ending, started, dry_run, counters);
    match (&ending.error, ending.exit) {
        (Some(reason), _) if ending.status == RunStatus::Skipped => {
            tracing::info!(status = %ending.status, "{reason}")
        }
        (Some(e), ExitCode::Partial) => tracing::warn!(status = %ending.status, "{e}"),
        (Some(e), _) => {
            tracing::error!(status = %ending.status, exit_code = ending.exit.code(), "{e}")
        }
        (None, _) => tracing::info!(
            status = %ending.status,
            done = ending.metrics.tasks_done,
            rows = ending.metrics.rows_written,
            "run finished"
        ),
    }
    // After the ledger row is final; bounded, never changes the exit code.
    crate::metrics::publish_run_end(&common, &summary);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", summary.to_line());
    let _ = out.flush();
    std::process::exit(ending.exit.code())
}

/// The summary line's content for a run that ended so: what `run` prints
/// last, and what the notify hooks send.
fn summary_of(
    name: &str,
    run_id: Uuid,
    ending: &Ending,
    started: Instant,
    dry_run: bool,
    counters: serde_json::Value,
) -> RunSummary {
    RunSummary {
        job: name.to_string(),
        run_id,
        status: ending.status,
        exit_code: ending.exit.code(),
        metrics: ending.metrics,
        duration_ms: started.elapsed().as_millis() as u64,
        peak_rss_kb: ledger::peak_rss_kb(),
        dry_run,
        counters,
        // A skipped run has a reason, not an error.
        reason: ending
            .error
            .clone()
            .filter(|_| ending.status == RunStatus::Skipped),
        error: ending
            .error
            .clone()
            .filter(|_| ending.status != RunStatus::Skipped),
    }
}

fn runtimes(concurrency: usize) -> Result<(tokio::runtime::Runtime, Workers)> {
    let controller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the controller runtime")?;
    Ok((controller, Workers::new(concurrency)?))
}

/// How a run ended.
#[derive(Debug)]
struct Ending {
    status: RunStatus,
    exit: ExitCode,
    metrics: RunMetrics,
    error: Option<String>,
}

impl Ending {
    fn new(exit: ExitCode, metrics: RunMetrics, error: Option<String>) -> Self {
        Self {
            status: exit.status(),
            exit,
            metrics,
            error,
        }
    }

    fn error(err: anyhow::Error, metrics: RunMetrics) -> Self {
        Self::new(
            errors::exit_code_for(&err),
            metrics,
            Some(errors::one_line(&err)),
        )
    }

    fn stopped(cause: StopCause, metrics: RunMetrics) -> Self {
        Self::new(
            cause.exit_code(),
            metrics,
            Some(cause.describe().to_string()),
        )
    }

    fn skipped(reason: String, metrics: RunMetrics) -> Self {
        Self {
            status: RunStatus::Skipped,
            exit: ExitCode::Success,
            metrics,
            error: Some(reason),
        }
    }
}

pub(super) struct Controller<J> {
    pub(super) job: Arc<J>,
    pub(super) run_id: Uuid,
    pub(super) deadline: RunDeadline,
    watchdog: Watchdog,
    pub(super) workers: Mutex<Workers>,
}

/// What a started run holds.
pub(super) struct Session {
    pub(super) db: Database,
    pub(super) ledger: RunLedger,
    pub(super) faults: FaultPlan,
    /// Alerts and check-ins (`crate::notify`), when configured.
    pub(super) notifier: Option<Notifier>,
}

/// Awaits `fut` unless the run is told to stop first.
async fn until_stop<T>(
    stop: &mut StopSignal,
    fut: impl Future<Output = T>,
) -> Result<T, StopCause> {
    tokio::select! {
        biased;
        cause = stop.stopped() => Err(cause),
        value = fut => Ok(value),
    }
}

/// Awaits job code (plan, after_tasks) while keeping the heartbeat going,
/// so a database that stalls meanwhile still ends the run in seconds.
async fn while_beating<T>(
    stop: &mut StopSignal,
    ledger: &RunLedger,
    metrics: &RunMetrics,
    every: Duration,
    limit: Duration,
    work: impl Future<Output = Result<T>>,
) -> Result<Result<T>, StopCause> {
    let mut heartbeat = tokio::time::interval(every);
    heartbeat.tick().await;
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            cause = stop.stopped() => return Err(cause),
            value = &mut work => return Ok(value),
            _ = heartbeat.tick() => {
                if let Err(e) = beat(ledger, metrics, limit).await {
                    return Ok(Err(e));
                }
            }
        }
    }
}

impl<J: Job> Controller<J> {
    /// The execution this process belongs to: `--execution`, or its own run.
    fn execution(&self) -> String {
        self.job
            .common()
            .run
            .execution()
            .unwrap_or_else(|| self.run_id.to_string())
    }

    /// Alone (not a replica of a shared execution).
    fn alone(&self) -> bool {
        self.job.common().run.execution().is_none()
    }

    /// Time a notify hook may take: at most the send limit, and always
    /// ending before the watchdog (deadline + grace) with a margin.
    fn hook_budget(&self) -> Duration {
        let watchdog_at = self.deadline.at + self.deadline.grace;
        watchdog_at
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_millis(500))
            .min(notify::http::SEND_LIMIT)
    }

    fn summary_line(&self, ending: &Ending) -> String {
        let common = self.job.common();
        summary_of(
            self.job.name(),
            self.run_id,
            ending,
            self.deadline.started,
            common.run.dry_run,
            self.job.counters(),
        )
        .to_line()
    }

    fn app_name(&self) -> String {
        ledger::application_name(self.job.name(), self.run_id)
    }

    /// The bound on each of the run's own database calls.
    pub(super) fn call_limit(&self) -> Duration {
        self.job.common().run.db_call_limit()
    }

    async fn run(self) -> Ending {
        let mut stop = match StopSignal::install(self.deadline, self.watchdog.clone()) {
            Ok(stop) => stop,
            Err(e) => {
                return Ending::error(
                    anyhow::Error::new(e).context("installing signal handlers"),
                    RunMetrics::default(),
                );
            }
        };
        let common = self.job.common();
        if common.run.task_timeout >= common.run.timeout {
            tracing::warn!(
                task_timeout = %super::args::format_duration(common.run.task_timeout),
                timeout = %super::args::format_duration(common.run.timeout),
                "--task-timeout is not below --timeout: the run deadline will cut tasks first"
            );
        }
        let session = match self.start(&mut stop).await {
            Ok(Ok(session)) => session,
            Ok(Err(ending)) => return ending,
            Err(e) => return Ending::error(e, RunMetrics::default()),
        };
        self.execute(session, &mut stop).await
    }

    /// Validates, connects, takes the lock and opens the ledger row. `Ok(Err)`
    /// is a run that ends here without error (skipped, dry run, stopped).
    async fn start(&self, stop: &mut StopSignal) -> Result<Result<Session, Ending>> {
        let common = self.job.common();
        let limit = self.call_limit();
        let faults = FaultPlan::from_env()?;
        if !faults.is_empty() {
            tracing::warn!(faults = ?faults, "fault injection is on ({})", fault::FAULT_ENV);
        }
        let notifier = Notifier::from_env(self.job.name())?;
        let db = Database::from_args(&common.database)?;
        tracing::info!(database = db.target(), "connecting");
        let mut client = match until_stop(stop, db.connect(&self.app_name())).await {
            Ok(client) => client?,
            Err(cause) => return Ok(Err(Ending::stopped(cause, RunMetrics::default()))),
        };
        bounded("checking the schema", limit, ledger::ensure_schema(&client)).await?;
        if common.run.dry_run {
            return Ok(Err(self.dry_run(&db, stop).await));
        }
        let args = serde_json::to_value(self.job.args())
            .context("encoding the job's arguments for the ledger")?;
        let joined = match common.run.execution() {
            None => {
                bounded(
                    "taking the singleton lock",
                    limit,
                    singleton::try_lock(&client, self.job.name()),
                )
                .await?
            }
            Some(execution) => {
                tracing::info!(execution = %execution, "joining the execution as a replica");
                bounded(
                    "joining the execution",
                    limit,
                    singleton::join_execution(&mut client, self.job.name(), &execution),
                )
                .await?
            }
        };
        let ledger = RunLedger::new(Arc::new(client), self.job.name(), self.run_id);
        if !joined {
            let holder = bounded("looking up the lock holder", limit, ledger.current_holder())
                .await
                .ok()
                .flatten();
            let reason = format!(
                "another run of {} holds the lock{}",
                self.job.name(),
                holder.map(|h| format!(": {h}")).unwrap_or_default()
            );
            bounded(
                "recording the skipped run",
                limit,
                ledger.record_skipped(&args, &reason),
            )
            .await?;
            let ending = Ending::skipped(reason, RunMetrics::default());
            if let Some(n) = &notifier {
                let line = self.summary_line(&ending);
                n.run_skipped(self.run_id, &line, self.hook_budget()).await;
            }
            return Ok(Err(ending));
        }
        let abandoned = bounded(
            "marking abandoned runs",
            limit,
            ledger.abandon_dead_runs(common.run.heartbeat, self.alone()),
        )
        .await?;
        for (run_id, job) in abandoned {
            tracing::warn!(abandoned_run = %run_id, abandoned_job = %job, "marked a dead run abandoned");
        }
        bounded("recording the run start", limit, ledger.begin(&args)).await?;
        tracing::info!(args = %args, "run started");
        crate::metrics::publish_run_start(common, self.job.name()).await;
        if let Some(n) = &notifier {
            let execution = self.execution();
            let run = self.notify_ref(&execution);
            n.run_started(ledger.client(), &run, self.hook_budget())
                .await;
        }
        Ok(Ok(Session {
            db,
            ledger,
            faults,
            notifier,
        }))
    }

    fn pool(&self, db: &Database) -> Result<deadpool_postgres::Pool> {
        let common = self.job.common();
        db.pool(
            &self.app_name(),
            usize::from(common.run.concurrency),
            common.database.connect_timeout,
            self.call_limit(),
        )
    }

    async fn dry_run(&self, db: &Database, stop: &mut StopSignal) -> Ending {
        let metrics = RunMetrics::default();
        let pool = match self.pool(db) {
            Ok(pool) => pool,
            Err(e) => return Ending::error(e, metrics),
        };
        let ctx = PlanContext {
            pool,
            run_id: self.run_id,
            execution: self.execution(),
            dry_run: true,
        };
        let plan = match until_stop(stop, self.job.plan(&ctx)).await {
            Ok(Ok(plan)) => plan,
            Ok(Err(e)) => return Ending::error(e, metrics),
            Err(cause) => return Ending::stopped(cause, metrics),
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "dry run: {} would run {} task(s); nothing is written",
            self.job.name(),
            plan.tasks.len()
        );
        if let Some(reason) = &plan.up_to_date {
            let _ = writeln!(out, "  up to date: {reason}");
        }
        for line in &plan.description {
            let _ = writeln!(out, "  {line}");
        }
        let metrics = RunMetrics {
            tasks_total: plan.tasks.len() as u64,
            ..metrics
        };
        Ending::new(ExitCode::Success, metrics, None)
    }

    async fn execute(&self, session: Session, stop: &mut StopSignal) -> Ending {
        let mut metrics = RunMetrics::default();
        let mut ending = match self.work(&session, stop, &mut metrics).await {
            Ok(ending) => ending,
            Err(e) => Ending::error(e, metrics),
        };
        ending.metrics = metrics;
        let end = RunEnd {
            status: ending.status,
            metrics: &ending.metrics,
            duration: self.deadline.started.elapsed(),
            peak_rss_kb: ledger::peak_rss_kb(),
            exit_code: ending.exit.code(),
            error: ending.error.as_deref(),
        };
        // Bounded: the watchdog fires at grace anyway, and a database that
        // stalled will not answer now either; finish well before it.
        // After an outage (69) a short try is all that is worth waiting.
        let most = if ending.exit == ExitCode::DatabaseUnavailable {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3)
        };
        let limit = (self.deadline.grace / 2)
            .min(self.call_limit())
            .min(most)
            .max(Duration::from_millis(500));
        let recorded = bounded(
            "recording the end of the run",
            limit,
            session.ledger.finish(&end),
        )
        .await;
        if let Err(e) = &recorded {
            tracing::error!(error = %format!("{e:#}"), "could not record the end of the run");
        }
        // A control connection that just stalled would stall again: go
        // straight to cancel requests then.
        let control_stalled =
            matches!(&recorded, Err(e) if errors::failure_kind(e) == FailureKind::Infrastructure);
        self.end_server_work(&session, limit, control_stalled).await;
        if let Some(n) = &session.notifier {
            let (execution, line) = (self.execution(), self.summary_line(&ending));
            let end = notify::RunEnd {
                status: ending.status.as_str(),
                exit_code: Some(ending.exit.code()),
                error: ending.error.as_deref(),
                summary_line: &line,
            };
            let run = self.notify_ref(&execution);
            n.run_ended(session.ledger.client(), &run, &end, self.hook_budget())
                .await;
        }
        ending
    }

    fn notify_ref<'a>(&self, execution: &'a str) -> notify::RunRef<'a> {
        notify::RunRef {
            run_id: self.run_id,
            execution,
            alone: self.alone(),
        }
    }

    /// Leaves nothing of this run on the server: every other backend with
    /// the run's application name (pool connections, maybe still running a
    /// query or queued on a lock) is terminated; if the control connection
    /// cannot do it, each pool connection gets a cancel request.
    async fn end_server_work(&self, session: &Session, limit: Duration, control_stalled: bool) {
        let terminated = if control_stalled {
            Err(anyhow::anyhow!("the run's own connection is not answering"))
        } else {
            bounded(
                "ending the run's other sessions",
                limit,
                session.ledger.terminate_other_sessions(),
            )
            .await
        };
        match terminated {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "ended the run's remaining database sessions"),
            Err(e) => {
                let sent = session.db.cancel_every_backend(limit).await;
                tracing::warn!(
                    error = %format!("{e:#}"),
                    cancel_requests = sent,
                    "could not end the run's other database sessions; sent cancel requests"
                );
            }
        }
    }

    async fn work(
        &self,
        s: &Session,
        stop: &mut StopSignal,
        metrics: &mut RunMetrics,
    ) -> Result<Ending> {
        let common = self.job.common();
        let limit = self.call_limit();
        let pool = self.pool(&s.db)?;
        let plan_ctx = PlanContext {
            pool: pool.clone(),
            run_id: self.run_id,
            execution: self.execution(),
            dry_run: false,
        };
        let planned = while_beating(
            stop,
            &s.ledger,
            metrics,
            common.run.heartbeat,
            limit,
            self.job.plan(&plan_ctx),
        )
        .await;
        let plan = match planned {
            Ok(plan) => plan?,
            Err(cause) => return Ok(Ending::stopped(cause, *metrics)),
        };
        if let Some(reason) = plan.up_to_date {
            return Ok(Ending::skipped(reason, *metrics));
        }
        let execution = self.execution();
        let plan_key = plan.resume_key.clone().unwrap_or_else(|| execution.clone());
        let book = ChunkBook {
            client: s.ledger.client(),
            job: self.job.name(),
            plan_key: &plan_key,
            execution: &execution,
            alone: self.alone(),
            run_id: self.run_id,
        };
        let already_done = bounded(
            "recording the plan's chunks",
            limit,
            book.register(&plan.tasks),
        )
        .await?;
        metrics.tasks_total = plan.tasks.len() as u64;
        metrics.tasks_skipped = already_done;
        if already_done > 0 {
            tracing::info!(already_done, total = plan.tasks.len(), "resuming the plan");
        }
        let mut batch = Batch::new(self, s, book, pool, metrics);
        let stopped = batch.run(stop).await;
        let plan_done = match stopped {
            None if batch.fatal.is_none() && !batch.breaker.is_open() => {
                bounded("reading run_chunks", limit, batch.book.all_done()).await
            }
            _ => Ok(false),
        };
        let (cancel, fatal, breaker) = (
            batch.cancel.clone(),
            batch.fatal.take(),
            batch.breaker.clone(),
        );
        cancel.cancel();
        if let Some(cause) = stopped {
            return Ok(Ending::stopped(cause, *metrics));
        }
        if let Some(err) = fatal {
            return Ok(Ending::error(err, *metrics));
        }
        if breaker.is_open() {
            // Persistent connection failures: the database is unavailable,
            // whatever the tasks were; the scheduler retries later.
            return Ok(Ending::new(
                ExitCode::DatabaseUnavailable,
                *metrics,
                Some(breaker.describe()),
            ));
        }
        // Once per plan, by whichever process finishes its last chunk
        // (replicas may share it; the hook must be idempotent).
        if plan_done? {
            let after = while_beating(
                stop,
                &s.ledger,
                metrics,
                common.run.heartbeat,
                limit,
                self.job.after_tasks(&plan_ctx, metrics),
            )
            .await;
            match after {
                Ok(result) => result?,
                Err(cause) => return Ok(Ending::stopped(cause, *metrics)),
            }
        }
        let failed = metrics.tasks_failed + metrics.tasks_timed_out;
        if failed > 0 {
            let msg = format!(
                "{failed} of {} task(s) failed and are in the dead-letter queue",
                metrics.tasks_total
            );
            return Ok(Ending::new(ExitCode::Partial, *metrics, Some(msg)));
        }
        Ok(Ending::new(ExitCode::Success, *metrics, None))
    }
}
