//! Test support shared by every integration test binary: a throw-away
//! PostgreSQL cluster started by the test process itself, a database per
//! test, and helpers to run the real job binaries.
//!
//! The cluster is `climate_jobs::ops::throwaway_pg` (initdb + pg_ctl from
//! Debian's `postgresql` package on a private port, as the postgres user
//! when root). One cluster per test binary, started on first use; a
//! detached reaper stops it and removes its directory when the test
//! process exits, however it exits.

#![allow(dead_code)]

pub mod proxy;

use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use climate_jobs::ops::throwaway_pg::ThrowawayPg;

pub mod receiver;

pub struct PgCluster {
    pub port: u16,
    pg: ThrowawayPg,
}

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
static TEMPLATE: OnceLock<()> = OnceLock::new();

fn check(output: Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PgCluster {
    pub fn shared() -> &'static PgCluster {
        CLUSTER.get_or_init(|| {
            let pg = ThrowawayPg::start()
                .and_then(|pg| pg.stop_when_process_exits(std::process::id()))
                .unwrap_or_else(|e| panic!("starting the test PostgreSQL: {e:#}"));
            PgCluster { port: pg.port, pg }
        })
    }

    pub fn url(&self, db: &str) -> String {
        self.pg.url(db)
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.pg.dir.join("server.log")).unwrap_or_default()
    }
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// An empty database (no schema).
    pub fn empty(name: &str) -> TestDb {
        let cluster = PgCluster::shared();
        let admin = cluster.url("postgres");
        sql_on(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        sql_on(&admin, &format!("CREATE DATABASE {name}"));
        TestDb {
            name: name.to_string(),
            url: cluster.url(name),
        }
    }

    /// A database with the schema applied (cloned from a template migrated
    /// once per test binary by the real `jobctl migrate`).
    pub fn migrated(name: &str) -> TestDb {
        let cluster = PgCluster::shared();
        TEMPLATE.get_or_init(|| {
            let t = TestDb::empty("template_migrated");
            let out = jobctl(&t.url)
                .arg("migrate")
                .output()
                .expect("running jobctl migrate");
            check(out, "jobctl migrate on the template");
        });
        let admin = cluster.url("postgres");
        sql_on(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        sql_on(
            &admin,
            &format!("CREATE DATABASE {name} TEMPLATE template_migrated"),
        );
        TestDb {
            name: name.to_string(),
            url: cluster.url(name),
        }
    }

    /// A database at schema version `version`: the first `version`
    /// migrations applied and recorded, as an older release left it, for
    /// tests that a later migration converts its rows in place.
    pub fn at_version(name: &str, version: usize) -> TestDb {
        let db = TestDb::empty(name);
        let mut sql = String::from(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now());",
        );
        let applied = &climate_jobs::store::schema::MIGRATIONS[..version];
        for (_, _, text) in applied {
            sql.push_str(text);
        }
        let versions: Vec<String> = applied
            .iter()
            .map(|(v, name, _)| format!("({v}, '{name}')"))
            .collect();
        sql.push_str(&format!(
            "INSERT INTO schema_migrations (version, name) VALUES {};",
            versions.join(",")
        ));
        db.rows(&sql);
        db
    }

    /// Runs the real `jobctl migrate` on a database made by
    /// [`Self::at_version`]`(_, present)` and checks it applied every later
    /// migration.
    pub fn migrate_the_rest(&self, present: usize) {
        let migrated = run({
            let mut c = jobctl(&self.url);
            c.arg("migrate");
            c
        });
        assert_eq!(migrated.code, 0, "{}", migrated.all_output());
        let expected = format!(
            "{} applied, {present} already present",
            climate_jobs::store::schema::MIGRATIONS.len() - present
        );
        assert!(migrated.stdout.contains(&expected), "{}", migrated.stdout);
    }

    /// Rows of a query, every value as text (NULL as None).
    pub fn rows(&self, query: &str) -> Vec<Vec<Option<String>>> {
        sql_on(&self.url, query)
    }

    /// The single value of a query, as text.
    pub fn scalar(&self, query: &str) -> String {
        let rows = self.rows(query);
        assert_eq!(rows.len(), 1, "expected one row from {query}, got {rows:?}");
        rows[0][0].clone().unwrap_or_default()
    }

    pub fn count(&self, query: &str) -> i64 {
        self.scalar(query).parse().expect("a count")
    }

    /// [`Self::rows`] with `hazard_yearly` defined: `hazard_results` as one
    /// row per yearly value (grid_id, dataset_id, scenario, risk_type, year,
    /// value, score, run_id), missing years left out.
    pub fn yearly_rows(&self, query: &str) -> Vec<Vec<Option<String>>> {
        self.rows(&format!("WITH hazard_yearly AS ({HAZARD_YEARLY}) {query}"))
    }

    pub fn yearly_scalar(&self, query: &str) -> String {
        self.scalar(&format!("WITH hazard_yearly AS ({HAZARD_YEARLY}) {query}"))
    }

    pub fn yearly_count(&self, query: &str) -> i64 {
        self.count(&format!("WITH hazard_yearly AS ({HAZARD_YEARLY}) {query}"))
    }
}

/// `hazard_results`' series unnested, as the tests compare them.
const HAZARD_YEARLY: &str = "
SELECT h.grid_id, h.dataset_id, d.scenario, h.risk_type, (h.first_year + u.i - 1)::integer AS year,
       u.value, u.score, h.run_id
  FROM hazard_results h
  JOIN datasets d ON d.id = h.dataset_id
 CROSS JOIN LATERAL unnest(h.values_by_year, h.scores_by_year) WITH ORDINALITY AS u(value, score, i)
 WHERE u.value IS NOT NULL";

pub fn sql_on(url: &str, query: &str) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        tokio::spawn(conn);
        let messages = client
            .simple_query(query)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(String::from))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// `jobctl` with the database set and JSON logs, no inherited faults.
pub fn jobctl(url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobctl"));
    c.env("DATABASE_URL", url)
        .env("CLIMATE_JOBS_LOG_FORMAT", "json")
        .env_remove("CLIMATE_JOBS_FAULT")
        .env_remove("DATABASE_URL_FILE")
        .stdin(Stdio::null());
    c
}

/// What a finished process printed, and how long it took.
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// The summary line: the last line of stdout, parsed.
    pub fn summary(&self) -> serde_json::Value {
        let last = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no stdout; stderr:\n{}", self.stderr));
        serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "last stdout line is not JSON ({e}): {last}\nstderr:\n{}",
                self.stderr
            )
        })
    }

    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn run(mut cmd: Command) -> Finished {
    let started = Instant::now();
    let out = cmd.output().expect("running the binary");
    finished(out, started)
}

pub fn spawn(mut cmd: Command) -> (Child, Instant) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the binary");
    (child, Instant::now())
}

pub fn wait(child: Child, started: Instant) -> Finished {
    let out = child.wait_with_output().expect("waiting for the binary");
    finished(out, started)
}

fn finished(out: Output, started: Instant) -> Finished {
    use std::os::unix::process::ExitStatusExt;
    let code = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    Finished {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child pid we own.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

/// Polls `cond` every 50 ms up to `limit`.
/// Waits up to `limit` until more than `more_than` chunks of the database
/// at `url` are done, i.e. a run is under way; fails the test otherwise.
pub fn await_chunks_done(url: &str, more_than: i64, limit: Duration) {
    let done = || {
        sql_on(url, "SELECT count(*) FROM run_chunks WHERE state = 'done'")[0][0]
            .as_deref()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
    };
    assert!(
        wait_until(limit, || done() > more_than),
        "the run never got going: {} chunk(s) done after {limit:?}",
        done()
    );
}

pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// `jobctl demo-data` output under target/tmp, generated once per test
/// binary and `tag`: `{scenario}.nc` per scenario and `regions.csv`.
pub fn demo_data(tag: &str, points: u32, years: &str, scenarios: &str) -> std::path::PathBuf {
    static MADE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{tag}-{}", std::process::id()));
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if !made.iter().any(|t| t == tag) {
        let out = Command::new(env!("CARGO_BIN_EXE_jobctl"))
            .args([
                "demo-data",
                "--points",
                &points.to_string(),
                "--years",
                years,
                "--scenarios",
                scenarios,
                "--out",
            ])
            .arg(&dir)
            .output()
            .expect("running jobctl demo-data");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        made.push(tag.to_string());
    }
    dir
}

/// A job binary with the database set and JSON logs, no inherited faults.
pub fn job(url: &str, binary: &str, args: &[&str]) -> Command {
    let mut c = Command::new(binary);
    c.env("DATABASE_URL", url)
        .env("CLIMATE_JOBS_LOG_FORMAT", "json")
        .env_remove("CLIMATE_JOBS_FAULT")
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Database sessions a test keeps open (to hold a lock, to use up
/// connections), on a runtime of their own; closed when dropped.
pub struct HeldSessions {
    rt: tokio::runtime::Runtime,
    clients: Vec<tokio_postgres::Client>,
}

impl HeldSessions {
    pub fn new() -> HeldSessions {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime");
        HeldSessions {
            rt,
            clients: Vec::new(),
        }
    }

    /// Opens one more session and runs `setup` on it (e.g. `BEGIN; LOCK …`).
    pub fn open(&mut self, url: &str, setup: &str) {
        let client = self.rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
            tokio::spawn(conn);
            if !setup.is_empty() {
                client
                    .batch_execute(setup)
                    .await
                    .unwrap_or_else(|e| panic!("{setup}: {e}"));
            }
            client
        });
        self.clients.push(client);
    }
}

/// Runs a command, killing it if it has not exited after `limit` (the
/// test then fails on the returned `None`: the binary hung).
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Option<Finished> {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the binary");
    let (pid, started) = (child.id(), Instant::now());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wait(child, started));
    });
    match rx.recv_timeout(limit) {
        Ok(done) => Some(done),
        Err(_) => {
            // SAFETY: kill(2) on a child pid we own and have not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let _ = rx.recv();
            None
        }
    }
}

/// A PostgreSQL cluster of one test's own, for faults that would disturb
/// the shared one (a restart). Stopped and removed when dropped.
pub struct PrivateCluster {
    pub pg: ThrowawayPg,
}

impl PrivateCluster {
    pub fn start() -> PrivateCluster {
        let pg =
            ThrowawayPg::start().unwrap_or_else(|e| panic!("starting a private PostgreSQL: {e:#}"));
        PrivateCluster { pg }
    }

    pub fn url(&self, db: &str) -> String {
        self.pg.url(db)
    }

    /// `pg_ctl restart -m fast`: every session is ended (57P01), the
    /// server is down a moment, then back with the same settings.
    pub fn restart(&self) {
        let bin = climate_jobs::ops::throwaway_pg::server_bin_dir().expect("PostgreSQL binaries");
        let pg_ctl = bin.join("pg_ctl");
        // SAFETY: geteuid has no preconditions.
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            Command::new(&pg_ctl)
        };
        cmd.arg("-D")
            .arg(self.pg.dir.join("data"))
            .arg("-l")
            .arg(self.pg.dir.join("server.log"))
            .args(["-m", "fast", "-w", "-t", "60", "restart"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        check(
            cmd.output().expect("running pg_ctl restart"),
            "pg_ctl restart",
        );
    }
}
