-- The harness's ledger: runs, their chunks, and dead letters.
-- Every job binary writes these; `jobctl runs` and `jobctl dlq` read them.

CREATE TABLE job_runs (
    run_id          uuid PRIMARY KEY,
    job             text        NOT NULL,
    status          text        NOT NULL CHECK (status IN (
                        'running', 'succeeded', 'partial', 'failed', 'timed_out',
                        'cancelled', 'skipped', 'abandoned')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    host            text        NOT NULL,
    pid             integer     NOT NULL,
    args            jsonb       NOT NULL DEFAULT '{}',
    tasks_total     integer     NOT NULL DEFAULT 0,
    tasks_done      integer     NOT NULL DEFAULT 0,
    tasks_failed    integer     NOT NULL DEFAULT 0,
    tasks_timed_out integer     NOT NULL DEFAULT 0,
    tasks_skipped   integer     NOT NULL DEFAULT 0,
    rows_written    bigint      NOT NULL DEFAULT 0,
    duration_ms     bigint,
    peak_rss_kb     bigint,
    exit_code       integer,
    error           text
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at DESC);
CREATE INDEX job_runs_running ON job_runs (job) WHERE status = 'running';

-- A chunk is a unit of work of a plan. `plan_key` identifies the logical
-- work (same inputs and scope → same key), so a run cut short is resumed by
-- the next one from its first unfinished chunk.
CREATE TABLE run_chunks (
    job          text        NOT NULL,
    plan_key     text        NOT NULL,
    chunk_key    text        NOT NULL,
    ordinal      integer     NOT NULL,
    payload      jsonb       NOT NULL,
    state        text        NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'running', 'done', 'failed')),
    run_id       uuid,
    -- The scheduler execution whose replicas share this plan's chunks.
    execution    text,
    attempts     integer     NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    rows_written bigint      NOT NULL DEFAULT 0,
    started_at   timestamptz,
    finished_at  timestamptz,
    error        text,
    PRIMARY KEY (job, plan_key, chunk_key)
);
CREATE INDEX run_chunks_run ON run_chunks (run_id);
CREATE INDEX run_chunks_open ON run_chunks (job, plan_key, ordinal) WHERE state <> 'done';

-- Which scheduler execution of a job is the current one: replicas of it
-- join its run, another execution is skipped while any replica lives.
CREATE TABLE job_executions (
    job        text        PRIMARY KEY,
    execution  text        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);

-- A task that failed or timed out, with what it needs to run again.
CREATE TABLE dead_letters (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job             text        NOT NULL,
    task_key        text        NOT NULL,
    payload         jsonb       NOT NULL,
    error_kind      text        NOT NULL CHECK (error_kind IN ('error', 'timeout', 'infrastructure')),
    error           text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'running', 'resolved', 'dead')),
    attempts        integer     NOT NULL DEFAULT 1,
    first_run_id    uuid        NOT NULL,
    last_run_id     uuid        NOT NULL,
    resolved_by     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
-- One open letter per task: a task that fails again updates its letter.
CREATE UNIQUE INDEX dead_letters_open_task ON dead_letters (job, task_key)
    WHERE status IN ('pending', 'running');
CREATE INDEX dead_letters_due ON dead_letters (job, next_attempt_at) WHERE status = 'pending';
