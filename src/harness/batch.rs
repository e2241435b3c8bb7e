//! The task loop of one run: claims chunks, runs each as a task on the
//! task runtime, and records what became of it (done, dead letter, tried
//! again). It enforces the task timeout itself, so a task that never
//! yields cannot hold its chunk or its slot, and it ends the run when the
//! database stalls.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::breaker::CircuitBreaker;
use super::chunks::{ChunkBook, PendingChunk};
use super::database::{self, bounded};
use super::dead_letter::{DeadLetter, LetterKind};
use super::errors::{self, DatabaseUnavailable, FailureKind};
use super::fault::{self, Fault};
use super::job::{Job, TaskContext, TaskOutput};
use super::ledger::{RunLedger, RunMetrics};
use super::progress::{LOG_EVERY, Progress};
use super::run::{Controller, Session};
use super::shutdown::{StopCause, StopSignal};
use super::telemetry;

/// The outcome of one task as the controller sees it.
pub(super) enum TaskResult {
    Done(TaskOutput),
    Failed(anyhow::Error),
    TimedOut(Duration),
}

/// Touches the ledger row, bounded by the call limit. A heartbeat the
/// database does not answer, or a lost control connection, ends the run
/// (exit 69): nothing the run does can be recorded any more.
pub(super) async fn beat(ledger: &RunLedger, metrics: &RunMetrics, limit: Duration) -> Result<()> {
    match bounded("the heartbeat", limit, ledger.heartbeat(metrics)).await {
        Ok(()) => Ok(()),
        Err(e) if errors::failure_kind(&e) == FailureKind::Infrastructure => Err(e),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "heartbeat failed");
            Ok(())
        }
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
pub(super) struct Batch<'a, J> {
    controller: &'a Controller<J>,
    session: &'a Session,
    pub(super) book: ChunkBook<'a>,
    pool: deadpool_postgres::Pool,
    metrics: &'a mut RunMetrics,
    pub(super) breaker: CircuitBreaker,
    pub(super) cancel: CancellationToken,
    /// What ends the run at once (a stalled database, a bookkeeping
    /// failure, a task asking to abort): in-flight tasks are abandoned and
    /// their chunks left to the next run.
    pub(super) fatal: Option<anyhow::Error>,
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

impl<'a, J: Job> Batch<'a, J> {
    pub(super) fn new(
        controller: &'a Controller<J>,
        session: &'a Session,
        book: ChunkBook<'a>,
        pool: deadpool_postgres::Pool,
        metrics: &'a mut RunMetrics,
    ) -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        let threshold = controller.job.common().run.breaker_threshold;
        Self {
            controller,
            session,
            book,
            pool,
            metrics,
            breaker: CircuitBreaker::new(threshold),
            cancel: CancellationToken::new(),
            fatal: None,
            in_flight: HashMap::new(),
            retry: VecDeque::new(),
            infra_attempts: HashMap::new(),
            next_seq: 0,
            results_tx,
            results,
        }
    }

    fn limit(&self) -> Duration {
        self.controller.call_limit()
    }

    fn halted(&self) -> bool {
        self.fatal.is_some() || self.breaker.is_open()
    }

    /// Runs the pending chunks; returns the stop cause if the run was stopped.
    pub(super) async fn run(&mut self, stop: &mut StopSignal) -> Option<StopCause> {
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
                    None => job.run_payload(ctx).await,
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
            TaskResult::Failed(err)
                if errors::aborts_run(&err) || errors::has_configuration_error(&err) =>
            {
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
