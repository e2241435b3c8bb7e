-- What each alert receiver of a job was last told, and the check-in of
-- each execution. Rows are claimed with conditional UPDATE ... RETURNING,
-- so retries and replicas of one run send one message, not one each.

-- One row per job and receiver (slack, teams, pagerduty, webhook).
CREATE TABLE notify_alerts (
    job           text        NOT NULL,
    receiver      text        NOT NULL,
    -- What the receiver last heard: 'ok' (nothing, or resolved) or 'firing'.
    state         text        NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'firing')),
    firing_since  timestamptz,
    last_status   text,
    last_run_id   uuid,
    last_sent_at  timestamptz,
    sends         integer     NOT NULL DEFAULT 0,
    -- A process sending now; another may take over once the claim expires.
    claimed_by    uuid,
    claimed_until timestamptz,
    -- The last failed send, kept until a send succeeds (the next run retries).
    last_error    text,
    PRIMARY KEY (job, receiver)
);

-- One row per execution (a lone run is its own execution): who pinged
-- start, how many of its processes have finished, and the worst outcome.
CREATE TABLE notify_executions (
    job          text        NOT NULL,
    execution    text        NOT NULL,
    -- The check-in run id (`rid`): the run id of the first process to join.
    rid          uuid        NOT NULL,
    joined       integer     NOT NULL DEFAULT 1,
    closed       integer     NOT NULL DEFAULT 0,
    worst_rank   integer     NOT NULL DEFAULT -1,
    worst_status text,
    worst_exit   integer,
    started_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    PRIMARY KEY (job, execution)
);
CREATE INDEX notify_executions_started ON notify_executions (started_at);
