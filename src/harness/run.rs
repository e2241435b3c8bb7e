//! `run(job)`: the run contract, start to exit, for any `Job`.
//!
//! Two runtimes: tasks run on a multi-thread runtime of their own; the
//! controller (deadline, signals, lock, ledger, heartbeat, dead letters)
//! runs on a current-thread runtime on the main thread with its own
//! database connection. A task that blocks its worker threads can then
//! never stop the run from noticing its deadline and recording it, and the
//! watchdog thread covers what even the controller cannot.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::breaker::CircuitBreaker;
use super::chunks::{ChunkBook, PendingChunk};
use super::database::{self, Database, bounded};
use super::dead_letter::{DeadLetter, LetterKind};
use super::deadline::{RunDeadline, Watchdog};
use super::errors::{self, DatabaseUnavailable, FailureKind};
use super::fault::{self, Fault, FaultPlan};
use super::job::{Job, PlanContext, TaskContext, TaskOutput};
use super::ledger::{self, RunEnd, RunLedger, RunMetrics};
use super::outcome::{ExitCode, RunStatus};
use super::progress::{LOG_EVERY, Progress};
use super::shutdown::{StopCause, StopSignal};
use super::singleton;
use super::summary::RunSummary;
use super::telemetry;
use super::workers::Workers;

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

    let summary = RunSummary {
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
    };
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
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", summary.to_line());
    let _ = out.flush();
    std::process::exit(ending.exit.code())
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

struct Controller<J> {
    job: Arc<J>,
    run_id: Uuid,
    deadline: RunDeadline,
    watchdog: Watchdog,
    workers: Mutex<Workers>,
}

/// What a started run holds.
struct Session {
    db: Database,
    ledger: RunLedger,
    faults: FaultPlan,
}

/// The outcome of one task as the controller sees it.
enum TaskResult {
    Done(TaskOutput),
    Failed(anyhow::Error),
    TimedOut(Duration),
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

/// Touches the ledger row, bounded by the call limit. A heartbeat the
/// database does not answer, or a lost control connection, ends the run
/// (exit 69): nothing the run does can be recorded any more.
async fn beat(ledger: &RunLedger, metrics: &RunMetrics, limit: Duration) -> Result<()> {
    match bounded("the heartbeat", limit, ledger.heartbeat(metrics)).await {
        Ok(()) => Ok(()),
        Err(e) if errors::failure_kind(&e) == FailureKind::Infrastructure => Err(e),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "heartbeat failed");
            Ok(())
        }
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

    fn app_name(&self) -> String {
        ledger::application_name(self.job.name(), self.run_id)
    }

    /// The bound on each of the run's own database calls.
    fn call_limit(&self) -> Duration {
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
        let args = self.job.args();
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
            return Ok(Err(Ending::skipped(reason, RunMetrics::default())));
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
        Ok(Ok(Session { db, ledger, faults }))
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
        let limit = (self.deadline.grace / 2)
            .min(self.call_limit())
            .min(Duration::from_secs(3))
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
        ending
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
        let (results_tx, results) = mpsc::unbounded_channel();
        let mut batch = Batch {
            controller: self,
            session: s,
            book,
            pool,
            metrics,
            breaker: CircuitBreaker::new(common.run.breaker_threshold),
            cancel: CancellationToken::new(),
            fatal: None,
            in_flight: HashMap::new(),
            retry: VecDeque::new(),
            infra_attempts: HashMap::new(),
            next_seq: 0,
            results_tx,
            results,
        };
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

/// A task the controller is waiting for.
struct InFlight {
    chunk: PendingChunk,
    /// When the controller gives up on it even if it never yields.
    give_up_at: Instant,
    abort: tokio::task::AbortHandle,
}

/// Sends a task's result to the controller; if the task unwinds (panic) or
/// is aborted before it has one, says so instead.
struct Reporter {
    seq: u64,
    tx: mpsc::UnboundedSender<(u64, TaskResult)>,
    sent: bool,
}

impl Reporter {
    fn send(mut self, result: TaskResult) {
        self.sent = true;
        let _ = self.tx.send((self.seq, result));
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if !self.sent {
            let msg = if std::thread::panicking() {
                "task panicked"
            } else {
                "task was cancelled"
            };
            let _ = self
                .tx
                .send((self.seq, TaskResult::Failed(anyhow::anyhow!("{msg}"))));
        }
    }
}

/// The task loop of one run.
struct Batch<'a, J> {
    controller: &'a Controller<J>,
    session: &'a Session,
    book: ChunkBook<'a>,
    pool: deadpool_postgres::Pool,
    metrics: &'a mut RunMetrics,
    breaker: CircuitBreaker,
    cancel: CancellationToken,
    /// What ends the run at once (a stalled database, a bookkeeping
    /// failure, a task asking to abort): in-flight tasks are abandoned and
    /// their chunks left to the next run.
    fatal: Option<anyhow::Error>,
    in_flight: HashMap<u64, InFlight>,
    /// Chunks whose task hit a connection failure, with when to retry them.
    retry: VecDeque<(Instant, PendingChunk)>,
    /// Connection failures per chunk in this run.
    infra_attempts: HashMap<String, u32>,
    next_seq: u64,
    results_tx: mpsc::UnboundedSender<(u64, TaskResult)>,
    results: mpsc::UnboundedReceiver<(u64, TaskResult)>,
}

/// Waits until `at`, or forever when there is nothing to wait for.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl<J: Job> Batch<'_, J> {
    fn limit(&self) -> Duration {
        self.controller.call_limit()
    }

    fn halted(&self) -> bool {
        self.fatal.is_some() || self.breaker.is_open()
    }

    /// Runs the pending chunks; returns the stop cause if the run was stopped.
    async fn run(&mut self, stop: &mut StopSignal) -> Option<StopCause> {
        let common = self.controller.job.common();
        let concurrency = usize::from(common.run.concurrency);
        let progress = Progress::new(self.metrics.tasks_total, telemetry::stderr_is_terminal());
        progress.update(self.metrics);
        let mut queue: VecDeque<PendingChunk> = Default::default();
        // No claimable chunk at the last look; looked again when a task ends.
        let mut exhausted = false;
        // A chunk lease outlives the task's own limit, so only a dead
        // holder's chunk is ever claimed again.
        let lease =
            common.run.task_timeout + self.controller.deadline.grace + Duration::from_secs(10);
        let mut heartbeat = tokio::time::interval(common.run.heartbeat);
        let mut progress_tick = tokio::time::interval(LOG_EVERY);
        heartbeat.tick().await;
        progress_tick.tick().await;

        let mut stopped = None;
        loop {
            while !self.halted() && self.in_flight.len() < concurrency {
                let now = Instant::now();
                if let Some(pos) = self.retry.iter().position(|(at, _)| *at <= now) {
                    if let Some((_, chunk)) = self.retry.remove(pos) {
                        self.spawn(chunk);
                    }
                    continue;
                }
                if queue.is_empty() && !exhausted {
                    let want = concurrency - self.in_flight.len();
                    match bounded(
                        "claiming chunks",
                        self.limit(),
                        self.book.claim(want, lease),
                    )
                    .await
                    {
                        Ok(claimed) => {
                            exhausted = claimed.is_empty();
                            queue.extend(claimed);
                        }
                        Err(e) => {
                            self.fatal.get_or_insert(e);
                            break;
                        }
                    }
                }
                let Some(chunk) = queue.pop_front() else {
                    break;
                };
                self.spawn(chunk);
            }
            if self.fatal.is_some() {
                break;
            }
            if self.in_flight.is_empty() && (self.retry.is_empty() || self.breaker.is_open()) {
                // Replicas: another process still holds chunks. Wait until
                // they finish or their lease ends (then claim them), so the
                // run ends when its last chunk does.
                let wait = if self.halted() {
                    None
                } else {
                    match bounded(
                        "reading run_chunks",
                        self.limit(),
                        self.book.others_running(),
                    )
                    .await
                    {
                        Ok(wait) => wait,
                        Err(e) => {
                            self.fatal.get_or_insert(e);
                            None
                        }
                    }
                };
                let Some(wait) = wait else { break };
                let nap = wait.clamp(Duration::from_millis(200), Duration::from_secs(2));
                // Waiting is being alive too: keep the heartbeat going, or a
                // sibling would take this replica for dead after six beats.
                tokio::select! {
                    biased;
                    cause = stop.stopped() => { stopped = Some(cause); break; }
                    _ = heartbeat.tick() => { self.beat().await; continue; }
                    _ = progress_tick.tick() => { progress.log(self.metrics); continue; }
                    _ = tokio::time::sleep(nap) => { exhausted = false; continue; }
                }
            }
            let give_up_at = self.in_flight.values().map(|t| t.give_up_at).min();
            let retry_at = if self.in_flight.len() < concurrency {
                self.retry.iter().map(|(at, _)| *at).min()
            } else {
                None
            };
            tokio::select! {
                biased;
                cause = stop.stopped() => { stopped = Some(cause); break; }
                received = self.results.recv() => {
                    if let Some((seq, result)) = received {
                        self.collect(seq, result).await;
                        progress.update(self.metrics);
                        exhausted = false;
                    }
                }
                _ = sleep_until_opt(give_up_at) => {
                    self.give_up_overdue().await;
                    progress.update(self.metrics);
                    exhausted = false;
                }
                _ = sleep_until_opt(retry_at) => {}
                _ = heartbeat.tick() => self.beat().await,
                _ = progress_tick.tick() => progress.log(self.metrics),
            }
        }

        match stopped {
            Some(StopCause::Deadline) => {
                tracing::warn!(
                    in_flight = self.in_flight.len(),
                    "deadline: cancelling in-flight tasks"
                );
            }
            Some(cause) => {
                // Graceful: in-flight tasks get the grace period, minus a
                // margin to record the run before the watchdog fires.
                let grace = self.controller.deadline.grace;
                let drain_for = grace.saturating_sub((grace / 4).min(Duration::from_secs(2)));
                tracing::info!(
                    in_flight = self.in_flight.len(),
                    cause = cause.describe(),
                    "letting in-flight tasks finish"
                );
                let drained = tokio::time::timeout(drain_for, async {
                    while !self.in_flight.is_empty() && self.fatal.is_none() {
                        let Some((seq, result)) = self.results.recv().await else {
                            break;
                        };
                        self.collect(seq, result).await;
                    }
                })
                .await;
                if drained.is_err() {
                    tracing::warn!(
                        in_flight = self.in_flight.len(),
                        "grace period over: abandoning in-flight tasks"
                    );
                }
            }
            None => {}
        }
        self.cancel.cancel();
        for task in self.in_flight.values() {
            task.abort.abort();
        }
        if let Some(err) = &self.fatal
            && !self.in_flight.is_empty()
        {
            tracing::warn!(
                in_flight = self.in_flight.len(),
                error = %errors::one_line(err),
                "ending the run: abandoning in-flight tasks; their chunks are redone by the next run"
            );
        }
        progress.finish();
        progress.log(self.metrics);
        stopped
    }

    /// Touches the ledger row; a stalled database ends the run.
    async fn beat(&mut self) {
        let every = self.limit();
        if let Err(e) = beat(&self.session.ledger, self.metrics, every).await {
            tracing::error!(error = %errors::one_line(&e), "the run's database connection failed");
            self.fatal.get_or_insert(e);
        }
    }

    fn spawn(&mut self, chunk: PendingChunk) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let common = self.controller.job.common();
        let give_up_at = Instant::now() + common.run.task_timeout + common.run.task_timeout_slack();
        let handle = self.controller.workers.lock().ok().and_then(|w| w.handle());
        let Some(handle) = handle else {
            self.fatal
                .get_or_insert(anyhow::anyhow!("the task runtime is gone"));
            return;
        };
        let reporter = Reporter {
            seq,
            tx: self.results_tx.clone(),
            sent: false,
        };
        let work = self.task(&chunk, seq);
        let joined = handle.spawn(async move {
            let result = work.await;
            reporter.send(result);
        });
        self.in_flight.insert(
            seq,
            InFlight {
                chunk,
                give_up_at,
                abort: joined.abort_handle(),
            },
        );
    }

    /// The future of one task, to run on the task runtime.
    fn task(
        &self,
        chunk: &PendingChunk,
        seq: u64,
    ) -> impl Future<Output = TaskResult> + Send + 'static {
        let job = self.controller.job.clone();
        let fault = self.session.faults.for_task(chunk.ordinal);
        let limit = job.common().run.task_timeout;
        let ctx = TaskContext {
            pool: self.pool.clone(),
            run_id: self.controller.run_id,
            ordinal: chunk.ordinal,
            key: chunk.spec.key.clone(),
            payload: chunk.spec.payload.clone(),
            cancel: self.cancel.child_token(),
        };
        let span = tracing::info_span!("task", task = %chunk.spec.key, ordinal = chunk.ordinal);
        async move {
            let work = async {
                match fault {
                    Some(f @ (Fault::Hang | Fault::Block | Fault::Fail)) => {
                        Err(fault::act_out(f, ctx.ordinal).await)
                    }
                    None => job.run_task(ctx).await,
                }
            };
            match tokio::time::timeout(limit, database::as_task(seq, work)).await {
                Ok(Ok(out)) => TaskResult::Done(out),
                Ok(Err(e)) => TaskResult::Failed(e),
                Err(_) => TaskResult::TimedOut(limit),
            }
        }
        .instrument(span)
    }

    /// Tasks past their timeout that did not stop by themselves: they block
    /// their thread. Dead-letter them as timed out, and move new tasks to a
    /// fresh runtime so the run keeps its slots.
    async fn give_up_overdue(&mut self) {
        let now = Instant::now();
        let overdue: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, t)| t.give_up_at <= now)
            .map(|(seq, _)| *seq)
            .collect();
        if overdue.is_empty() {
            return;
        }
        let limit = self.controller.job.common().run.task_timeout;
        for seq in overdue {
            let Some(task) = self.in_flight.remove(&seq) else {
                continue;
            };
            task.abort.abort();
            tracing::warn!(
                task = %task.chunk.spec.key,
                ordinal = task.chunk.ordinal,
                "task did not stop at its timeout (it blocks its thread): giving up on it"
            );
            self.record_outcome(&task.chunk, TaskResult::TimedOut(limit), seq)
                .await;
        }
        let replaced = self.controller.workers.lock().map(|mut w| w.replace());
        match replaced {
            Ok(Ok(())) => {
                tracing::warn!("started a fresh task runtime in place of the blocked one")
            }
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "cannot start a fresh task runtime; going on with the blocked one")
            }
            Err(_) => tracing::error!("the task runtime is poisoned"),
        }
    }

    async fn collect(&mut self, seq: u64, result: TaskResult) {
        // Unknown: a task already given up on, finishing late.
        let Some(task) = self.in_flight.remove(&seq) else {
            return;
        };
        self.record_outcome(&task.chunk, result, seq).await;
    }

    async fn record_outcome(&mut self, chunk: &PendingChunk, result: TaskResult, seq: u64) {
        if let Err(e) = self.record(chunk, result, seq).await {
            tracing::error!(task = %chunk.spec.key, error = %format!("{e:#}"), "cannot record a task's outcome; stopping");
            self.fatal.get_or_insert(e);
        }
    }

    async fn record(&mut self, chunk: &PendingChunk, result: TaskResult, seq: u64) -> Result<()> {
        let run_id = self.controller.run_id;
        let limit = self.limit();
        let key = chunk.spec.key.as_str();
        let (kind, error) = match result {
            TaskResult::Done(out) => {
                self.metrics.tasks_done += 1;
                self.metrics.rows_written += out.rows_written;
                self.breaker.record_success();
                return bounded(
                    "recording a chunk done",
                    limit,
                    self.book.mark_done(key, out.rows_written),
                )
                .await;
            }
            TaskResult::Failed(err) if errors::aborts_run(&err) => {
                self.metrics.tasks_failed += 1;
                tracing::error!(task = key, error = %errors::one_line(&err), "task failure ends the run");
                self.fatal.get_or_insert(err);
                return Ok(());
            }
            TaskResult::Failed(err)
                if errors::failure_kind(&err) == FailureKind::Infrastructure =>
            {
                self.retry_later(chunk, &err, Some(seq)).await;
                return Ok(());
            }
            TaskResult::Failed(err) => {
                self.metrics.tasks_failed += 1;
                let msg = errors::one_line(&err);
                self.breaker.record_failure(FailureKind::Task, &msg);
                tracing::warn!(task = key, ordinal = chunk.ordinal, kind = FailureKind::Task.as_str(), error = %msg, "task failed");
                (LetterKind::Error, msg)
            }
            TaskResult::TimedOut(limit) => {
                let msg = format!(
                    "task timed out after {}",
                    super::args::format_duration(limit)
                );
                if !self.cancel_server_work(seq).await {
                    // The task waited on a database that does not even take
                    // a cancel request: a stalled connection, not the chunk's
                    // fault. The breaker counts it; the chunk is tried again.
                    let stalled: anyhow::Error = DatabaseUnavailable(format!(
                        "{msg} waiting on the database, which does not answer (not even a cancel request)"
                    ))
                    .into();
                    self.retry_later(chunk, &stalled, None).await;
                    return Ok(());
                }
                self.metrics.tasks_timed_out += 1;
                tracing::warn!(task = key, ordinal = chunk.ordinal, "{msg}");
                (LetterKind::Timeout, msg)
            }
        };
        let letter = DeadLetter {
            job: self.controller.job.name(),
            task_key: key,
            payload: &chunk.spec.payload,
            kind,
            error: &error,
            run_id,
        };
        bounded(
            "writing a dead letter",
            limit,
            self.controller
                .job
                .on_task_failure(self.session.ledger.client(), &letter),
        )
        .await?;
        bounded(
            "recording a chunk failed",
            limit,
            self.book.mark_failed(key, &error),
        )
        .await
    }

    /// Cancels what the task's connections still run on the server.
    /// Returns false when the task held connections and the server took
    /// none of the cancel requests: it is not answering at all.
    async fn cancel_server_work(&self, seq: u64) -> bool {
        let limit = self.limit().min(Duration::from_secs(2));
        let (held, sent) = self.session.db.cancel_task_backends(seq, limit).await;
        if sent > 0 {
            tracing::info!(
                cancel_requests = sent,
                "cancelled the task's server-side work"
            );
        }
        held == 0 || sent > 0
    }

    /// A connection-level failure (refused, reset, too many connections,
    /// pool timeout) is not the chunk's fault: it is not dead-lettered but
    /// tried again after a back-off, and counted by the breaker. A chunk
    /// that keeps failing so, or an open breaker, ends the run as 69.
    async fn retry_later(&mut self, chunk: &PendingChunk, err: &anyhow::Error, seq: Option<u64>) {
        let msg = errors::one_line(err);
        self.breaker
            .record_failure(FailureKind::Infrastructure, &msg);
        if let Some(seq) = seq {
            self.cancel_server_work(seq).await;
        }
        let seq = seq.unwrap_or(self.next_seq);
        let threshold = self.controller.job.common().run.breaker_threshold.max(1);
        let attempts = {
            let n = self
                .infra_attempts
                .entry(chunk.spec.key.clone())
                .or_insert(0);
            *n += 1;
            *n
        };
        if attempts >= threshold {
            self.fatal.get_or_insert(
                DatabaseUnavailable(format!(
                    "chunk {} failed {attempts} times on the database connection; last: {msg}",
                    chunk.spec.key
                ))
                .into(),
            );
            return;
        }
        // 250 ms, 500 ms, 1 s, … capped at 5 s, with jitter so tasks waiting
        // for a connection do not come back all at once.
        let base =
            Duration::from_millis(250).saturating_mul(1 << attempts.min(5).saturating_sub(1));
        let wait = super::dead_letter::backoff(
            1,
            base.min(Duration::from_secs(5)),
            Duration::from_secs(5),
            super::dead_letter::jitter_unit(seq as i64, attempts),
        );
        tracing::warn!(
            task = %chunk.spec.key,
            ordinal = chunk.ordinal,
            attempt = attempts,
            retry_in = %super::args::format_duration(wait),
            error = %msg,
            "database connection trouble: the chunk is tried again"
        );
        self.retry.push_back((Instant::now() + wait, chunk.clone()));
    }
}
