//! `run(job)`: the run contract, start to exit, for any `Job`.
//!
//! Two runtimes: tasks run on a multi-thread runtime of their own; the
//! controller (deadline, signals, lock, ledger, heartbeat, dead letters)
//! runs on a current-thread runtime on the main thread with its own
//! database connection. A task that blocks its worker threads can then
//! never stop the run from noticing its deadline and recording it, and the
//! watchdog thread covers what even the controller cannot.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::breaker::CircuitBreaker;
use super::chunks::{ChunkBook, PendingChunk};
use super::database::Database;
use super::dead_letter::{DeadLetter, LetterKind};
use super::deadline::{RunDeadline, Watchdog};
use super::errors::{self, FailureKind};
use super::fault::{self, Fault, FaultPlan};
use super::job::{Job, PlanContext, TaskContext, TaskOutput};
use super::ledger::{self, RunEnd, RunLedger, RunMetrics};
use super::outcome::{ExitCode, RunStatus};
use super::progress::{LOG_EVERY, Progress};
use super::shutdown::{StopCause, StopSignal};
use super::singleton;
use super::summary::RunSummary;
use super::telemetry;
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
        Ok((controller, tasks)) => {
            let c = Controller {
                job: job.clone(),
                run_id,
                deadline,
                watchdog: watchdog.clone(),
                tasks: tasks.handle().clone(),
            };
            let ending = controller.block_on(c.run().instrument(span.clone()));
            // Dropping `tasks` would wait for blocked workers; leak it.
            std::mem::forget(tasks);
            ending
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
    // After the ledger row is final; bounded, never changes the exit code.
    crate::metrics::publish_run_end(&common, &summary);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", summary.to_line());
    let _ = out.flush();
    std::process::exit(ending.exit.code())
}

/// The summary line's content for a run that ended so, for the notify
/// hooks (the same fields `run` prints last; kept apart so the end of
/// `run` stays as it was).
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

fn runtimes(concurrency: usize) -> Result<(tokio::runtime::Runtime, tokio::runtime::Runtime)> {
    let controller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the controller runtime")?;
    let tasks = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(concurrency.clamp(1, 64) + 1)
        .thread_name("task")
        .enable_all()
        .build()
        .context("starting the task runtime")?;
    Ok((controller, tasks))
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
    tasks: tokio::runtime::Handle,
}

/// What a started run holds.
struct Session {
    db: Database,
    ledger: RunLedger,
    faults: FaultPlan,
    /// Alerts and check-ins (`crate::notify`), when configured.
    notifier: Option<Notifier>,
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
        format!("{}/{}", self.job.name(), self.run_id)
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
        ledger::ensure_schema(&client).await?;
        if common.run.dry_run {
            return Ok(Err(self.dry_run(&db, stop).await));
        }
        let args = self.job.args();
        let joined = match common.run.execution() {
            None => singleton::try_lock(&client, self.job.name()).await?,
            Some(execution) => {
                tracing::info!(execution = %execution, "joining the execution as a replica");
                singleton::join_execution(&mut client, self.job.name(), &execution).await?
            }
        };
        let ledger = RunLedger::new(Arc::new(client), self.job.name(), self.run_id);
        if !joined {
            let holder = ledger.current_holder().await.ok().flatten();
            let reason = format!(
                "another run of {} holds the lock{}",
                self.job.name(),
                holder.map(|h| format!(": {h}")).unwrap_or_default()
            );
            ledger.record_skipped(&args, &reason).await?;
            let ending = Ending::skipped(reason, RunMetrics::default());
            if let Some(n) = &notifier {
                let line = self.summary_line(&ending);
                n.run_skipped(self.run_id, &line, self.hook_budget()).await;
            }
            return Ok(Err(ending));
        }
        for (run_id, job) in ledger
            .abandon_dead_runs(common.run.heartbeat, self.alone())
            .await?
        {
            tracing::warn!(abandoned_run = %run_id, abandoned_job = %job, "marked a dead run abandoned");
        }
        ledger.begin(&args).await?;
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

    async fn dry_run(&self, db: &Database, stop: &mut StopSignal) -> Ending {
        let metrics = RunMetrics::default();
        let common = self.job.common();
        let pool = match db.pool(
            &self.app_name(),
            usize::from(common.run.concurrency),
            common.database.connect_timeout,
        ) {
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
        // Bounded: the watchdog fires at grace anyway; finish before it.
        let limit = (self.deadline.grace / 2).max(Duration::from_millis(500));
        match tokio::time::timeout(limit, session.ledger.finish(&end)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %format!("{e:#}"), "could not record the end of the run")
            }
            Err(_) => tracing::error!(
                "could not record the end of the run: the database did not answer in time"
            ),
        }
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

    async fn work(
        &self,
        s: &Session,
        stop: &mut StopSignal,
        metrics: &mut RunMetrics,
    ) -> Result<Ending> {
        let common = self.job.common();
        let pool = s.db.pool(
            &self.app_name(),
            usize::from(common.run.concurrency),
            common.database.connect_timeout,
        )?;
        let plan_ctx = PlanContext {
            pool: pool.clone(),
            run_id: self.run_id,
            execution: self.execution(),
            dry_run: false,
        };
        let plan = match until_stop(stop, self.job.plan(&plan_ctx)).await {
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
        let already_done = book.register(&plan.tasks).await?;
        metrics.tasks_total = plan.tasks.len() as u64;
        metrics.tasks_skipped = already_done;
        if already_done > 0 {
            tracing::info!(already_done, total = plan.tasks.len(), "resuming the plan");
        }
        let mut batch = Batch {
            controller: self,
            session: s,
            book,
            pool,
            metrics,
            breaker: CircuitBreaker::new(common.run.breaker_threshold),
            cancel: CancellationToken::new(),
            fatal: None,
        };
        let stopped = batch.run(stop).await;
        let plan_done = match stopped {
            None => batch.book.all_done().await,
            Some(_) => Ok(false),
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
            return Ok(Ending::new(
                ExitCode::Failed,
                *metrics,
                Some(breaker.describe()),
            ));
        }
        // Once per plan, by whichever process finishes its last chunk
        // (replicas may share it; the hook must be idempotent).
        if plan_done? {
            match until_stop(stop, self.job.after_tasks(&plan_ctx, metrics)).await {
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

/// The task loop of one run.
struct Batch<'a, J> {
    controller: &'a Controller<J>,
    session: &'a Session,
    book: ChunkBook<'a>,
    pool: deadpool_postgres::Pool,
    metrics: &'a mut RunMetrics,
    breaker: CircuitBreaker,
    cancel: CancellationToken,
    /// A bookkeeping failure (ledger, dead letter): stop, don't lose work.
    fatal: Option<anyhow::Error>,
}

impl<J: Job> Batch<'_, J> {
    /// Runs the pending chunks; returns the stop cause if the run was stopped.
    async fn run(&mut self, stop: &mut StopSignal) -> Option<StopCause> {
        let common = self.controller.job.common();
        let concurrency = usize::from(common.run.concurrency);
        let progress = Progress::new(self.metrics.tasks_total, telemetry::stderr_is_terminal());
        progress.update(self.metrics);
        let mut queue: std::collections::VecDeque<PendingChunk> = Default::default();
        // No claimable chunk at the last look; looked again when a task ends.
        let mut exhausted = false;
        // A chunk lease outlives the task's own limit, so only a dead
        // holder's chunk is ever claimed again.
        let lease =
            common.run.task_timeout + self.controller.deadline.grace + Duration::from_secs(10);
        let mut in_flight: JoinSet<TaskResult> = JoinSet::new();
        let mut by_id: HashMap<tokio::task::Id, PendingChunk> = HashMap::new();
        let mut heartbeat = tokio::time::interval(common.run.heartbeat);
        let mut progress_tick = tokio::time::interval(LOG_EVERY);
        heartbeat.tick().await;
        progress_tick.tick().await;

        let mut stopped = None;
        loop {
            while self.fatal.is_none() && !self.breaker.is_open() && in_flight.len() < concurrency {
                if queue.is_empty() && !exhausted {
                    match self.book.claim(concurrency - in_flight.len(), lease).await {
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
                let id = in_flight
                    .spawn_on(self.task(&chunk), &self.controller.tasks)
                    .id();
                by_id.insert(id, chunk);
            }
            if in_flight.is_empty() {
                // Replicas: another process still holds chunks. Wait until
                // they finish or their lease ends (then claim them), so the
                // run ends when its last chunk does.
                let wait = if self.fatal.is_none() && !self.breaker.is_open() {
                    match self.book.others_running().await {
                        Ok(wait) => wait,
                        Err(e) => {
                            self.fatal.get_or_insert(e);
                            None
                        }
                    }
                } else {
                    None
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
            tokio::select! {
                biased;
                cause = stop.stopped() => { stopped = Some(cause); break; }
                joined = in_flight.join_next_with_id() => {
                    if let Some(joined) = joined {
                        self.collect(joined, &mut by_id).await;
                        progress.update(self.metrics);
                        exhausted = false;
                    }
                }
                _ = heartbeat.tick() => self.beat().await,
                _ = progress_tick.tick() => progress.log(self.metrics),
            }
        }

        match stopped {
            Some(StopCause::Deadline) => {
                tracing::warn!(
                    in_flight = in_flight.len(),
                    "deadline: cancelling in-flight tasks"
                );
            }
            Some(cause) => {
                // Graceful: in-flight tasks get the grace period, minus a
                // margin to record the run before the watchdog fires.
                let grace = self.controller.deadline.grace;
                let drain_for = grace.saturating_sub((grace / 4).min(Duration::from_secs(2)));
                tracing::info!(
                    in_flight = in_flight.len(),
                    cause = cause.describe(),
                    "letting in-flight tasks finish"
                );
                let drained = tokio::time::timeout(drain_for, async {
                    while let Some(joined) = in_flight.join_next_with_id().await {
                        self.collect(joined, &mut by_id).await;
                    }
                })
                .await;
                if drained.is_err() {
                    tracing::warn!(
                        in_flight = in_flight.len(),
                        "grace period over: abandoning in-flight tasks"
                    );
                }
            }
            None => {}
        }
        self.cancel.cancel();
        in_flight.abort_all();
        progress.finish();
        progress.log(self.metrics);
        stopped
    }

    /// Touches the ledger row, bounded by the heartbeat interval.
    async fn beat(&self) {
        let every = self.controller.job.common().run.heartbeat;
        let beat = self.session.ledger.heartbeat(self.metrics);
        match tokio::time::timeout(every, beat).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "heartbeat failed"),
            Err(_) => tracing::warn!("heartbeat: the database did not answer in time"),
        }
    }

    /// The future of one task, to run on the task runtime.
    fn task(&self, chunk: &PendingChunk) -> impl Future<Output = TaskResult> + Send + 'static {
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
            match tokio::time::timeout(limit, work).await {
                Ok(Ok(out)) => TaskResult::Done(out),
                Ok(Err(e)) => TaskResult::Failed(e),
                Err(_) => TaskResult::TimedOut(limit),
            }
        }
        .instrument(span)
    }

    async fn collect(
        &mut self,
        joined: Result<(tokio::task::Id, TaskResult), tokio::task::JoinError>,
        by_id: &mut HashMap<tokio::task::Id, PendingChunk>,
    ) {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) => {
                let msg = if e.is_panic() {
                    "task panicked"
                } else {
                    "task was cancelled"
                };
                (e.id(), TaskResult::Failed(anyhow::anyhow!("{msg}")))
            }
        };
        let Some(chunk) = by_id.remove(&id) else {
            return;
        };
        if let Err(e) = self.record(&chunk, result).await {
            tracing::error!(task = %chunk.spec.key, error = %format!("{e:#}"), "cannot record a task's outcome; stopping");
            self.fatal.get_or_insert(e);
        }
    }

    async fn record(&mut self, chunk: &PendingChunk, result: TaskResult) -> Result<()> {
        let run_id = self.controller.run_id;
        let key = chunk.spec.key.as_str();
        let (kind, error) = match result {
            TaskResult::Done(out) => {
                self.metrics.tasks_done += 1;
                self.metrics.rows_written += out.rows_written;
                self.breaker.record_success();
                return self.book.mark_done(key, out.rows_written).await;
            }
            TaskResult::Failed(err) if errors::aborts_run(&err) => {
                self.metrics.tasks_failed += 1;
                tracing::error!(task = key, error = %errors::one_line(&err), "task failure ends the run");
                self.fatal.get_or_insert(err);
                return Ok(());
            }
            TaskResult::Failed(err) => {
                self.metrics.tasks_failed += 1;
                let failure = errors::failure_kind(&err);
                let msg = errors::one_line(&err);
                self.breaker.record_failure(failure, &msg);
                tracing::warn!(task = key, ordinal = chunk.ordinal, kind = failure.as_str(), error = %msg, "task failed");
                let kind = match failure {
                    FailureKind::Task => LetterKind::Error,
                    FailureKind::Infrastructure => LetterKind::Infrastructure,
                };
                (kind, msg)
            }
            TaskResult::TimedOut(limit) => {
                self.metrics.tasks_timed_out += 1;
                let msg = format!(
                    "task timed out after {}",
                    super::args::format_duration(limit)
                );
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
        self.controller
            .job
            .on_task_failure(self.session.ledger.client(), &letter)
            .await?;
        self.book.mark_failed(key, &error).await
    }
}
