//! Test support shared by every integration test binary: a throw-away
//! PostgreSQL cluster started by the test process itself, a database per
//! test, and helpers to run the real job binaries.
//!
//! The cluster: `initdb` + `pg_ctl` from Debian's `postgresql` package
//! (`/usr/lib/postgresql/*/bin`, or `$PG_BIN`), on a private port and socket
//! directory under /tmp, fsync off. As root it runs as the `postgres` user
//! (initdb refuses root). One cluster per test binary, started on first use;
//! a detached reaper stops it and removes its directory when the test
//! process exits, however it exits.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct PgCluster {
    pub port: u16,
    dir: PathBuf,
}

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
static TEMPLATE: OnceLock<()> = OnceLock::new();

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server not found: install Debian's `postgresql` package or set PG_BIN")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb: install Debian's `postgresql` package")
        .1
}

/// A command run as the postgres user when we are root.
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local addr").port()
}

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
        CLUSTER.get_or_init(PgCluster::start)
    }

    fn start() -> PgCluster {
        let bin = pg_bin();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = PathBuf::from(format!(
            "/tmp/climate-jobs-pg-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("sock")).expect("creating the cluster directory");
        if is_root() {
            check(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir)
                    .output()
                    .expect("chown"),
                "chown of the cluster directory",
            );
        }
        let data = dir.join("data");
        check(
            pg_command(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ])
                .output()
                .expect("running initdb"),
            "initdb",
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            dir.join("sock").display()
        );
        check(
            pg_command(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-o", &opts, "-w", "-t", "60", "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("running pg_ctl start"),
            "pg_ctl start",
        );
        // The reaper outlives this process and cleans up after it.
        let runas = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = bin.join("pg_ctl").display(),
            data = data.display(),
            dir = dir.display(),
        );
        // `setsid -f` forks: the reaper is detached and `status` returns at once.
        let reaper = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting the cluster reaper");
        assert!(reaper.success(), "starting the cluster reaper: {reaper}");
        PgCluster { port, dir }
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops and starts the server (for outage tests).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
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
}

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
