-- A week of run history for `jobctl report`: 50 runs of each of the five
-- jobs (250), mostly succeeded, with partial, failed, timed-out, skipped
-- and abandoned ones, and two dead letters per partial run. Shared by
-- tests/it/report.rs and bench/report/run.sh.
INSERT INTO job_runs (run_id, job, status, started_at, heartbeat_at, finished_at, host, pid,
                      tasks_total, tasks_done, tasks_failed, tasks_timed_out, duration_ms,
                      exit_code, error)
SELECT gen_random_uuid(), j.name, s.status,
       now() - make_interval(mins => (i * 170 + j.k * 23)),
       now() - make_interval(mins => (i * 170 + j.k * 23)),
       now() - make_interval(mins => (i * 170 + j.k * 23)) + make_interval(secs => s.secs),
       'pod-' || i, 1000 + i, 20, 20 - s.bad, s.bad, 0, s.secs * 1000::bigint, s.code, s.err
  FROM generate_series(0, 49) AS i
 CROSS JOIN (VALUES ('canary', 0, 20), ('hazard-timeseries-batch', 1, 3000),
                    ('probability-batch', 2, 2400), ('cache-refresh', 3, 200),
                    ('dlq-reprocess', 4, 600)) AS j(name, k, typical)
 CROSS JOIN LATERAL (SELECT
       CASE WHEN (i + j.k * 5) % 17 = 5 THEN 'partial'
            WHEN (i + j.k * 7) % 23 = 7 THEN 'failed'
            WHEN (i + j.k * 3) % 29 = 11 AND j.k IN (1, 2) THEN 'timed_out'
            WHEN (i + j.k) % 13 = 3 THEN 'skipped'
            WHEN i = 41 - j.k * 6 THEN 'abandoned'
            ELSE 'succeeded' END AS status) AS st
 CROSS JOIN LATERAL (SELECT st.status,
       CASE st.status WHEN 'skipped' THEN 0 WHEN 'timed_out' THEN j.typical * 3
            WHEN 'abandoned' THEN j.typical / 3
            ELSE (j.typical * (0.5 + ((i * 7 + j.k) % 11) * 0.09))::int END AS secs,
       CASE st.status WHEN 'partial' THEN 3 WHEN 'failed' THEN 1 WHEN 'timed_out' THEN 124
            WHEN 'abandoned' THEN NULL ELSE 0 END AS code,
       CASE st.status WHEN 'partial' THEN 2 + i % 3 ELSE 0 END AS bad,
       CASE st.status WHEN 'partial' THEN 'chunks failed and are in the dead-letter queue'
            WHEN 'failed' THEN 'database unavailable: connection refused'
            WHEN 'timed_out' THEN 'run deadline exceeded'
            WHEN 'abandoned' THEN 'process gone: no heartbeat'
            WHEN 'skipped' THEN 'another run holds the lock' ELSE NULL END AS err) AS s;

INSERT INTO dead_letters (job, task_key, payload, error_kind, error, status, first_run_id,
                          last_run_id, created_at)
SELECT r.job, 'chunk-' || r.run_id || '-' || n, '{}', 'error', r.error,
       CASE WHEN n = 0 THEN 'resolved' ELSE 'pending' END, r.run_id, r.run_id, r.started_at
  FROM job_runs r CROSS JOIN generate_series(0, 1) AS n
 WHERE r.status = 'partial';
