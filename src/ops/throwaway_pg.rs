//! A throw-away PostgreSQL cluster: `initdb` + `pg_ctl` from Debian's
//! `postgresql` package (`/usr/lib/postgresql/*/bin`, or `$PG_BIN`) in a
//! temporary directory, on a free loopback port, fsync off. As root it runs
//! as the `postgres` user, since initdb refuses root. Used by `jobctl smoke`
//! and by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

pub struct ThrowawayPg {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    stopped: bool,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The newest `/usr/lib/postgresql/*/bin` with an initdb, or `$PG_BIN`.
pub fn server_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "PostgreSQL server not found: install Debian's `postgresql` package (or set PG_BIN)",
        )?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no /usr/lib/postgresql/*/bin/initdb: run scripts/ensure-deps.sh (it installs Debian's `postgresql` package), or set PG_BIN"
        ),
    }
}

/// A command run as the postgres user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn checked(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl ThrowawayPg {
    /// Creates and starts a cluster; stopped and removed on drop.
    pub fn start() -> Result<Self> {
        let bin = server_bin_dir()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = PathBuf::from(format!(
            "/tmp/climate-jobs-pg-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("sock"))
            .with_context(|| format!("creating {}", dir.display()))?;
        if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            checked(chown, "chown of the cluster directory")?;
        }
        let data = dir.join("data");
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ]);
        checked(initdb, "initdb")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            dir.join("sock").display()
        );
        let mut pg_ctl = as_postgres(&bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"])
            .stdout(Stdio::null());
        checked(pg_ctl, "pg_ctl start")?;
        Ok(Self {
            port,
            dir,
            bin,
            stopped: false,
        })
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Hands cleanup to a detached process that stops the cluster once
    /// `pid` has exited, however it exits (tests keep one cluster per test
    /// binary in a static, where Drop never runs).
    pub fn stop_when_process_exits(mut self, pid: u32) -> Result<Self> {
        let runas = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} -D {data} stop -m immediate >/dev/null 2>&1; rm -rf {dir}",
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
        );
        // `setsid -f` forks: the reaper is detached and `status` returns at once.
        let status = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("starting the cluster reaper")?;
        if !status.success() {
            bail!("starting the cluster reaper: {status}");
        }
        self.stopped = true; // the reaper owns it now
        Ok(self)
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "immediate"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
