//! Reaching Postgres: the URL (flag, env or mounted file), TLS, the bounded
//! task pool and the run's own control connection.
//!
//! Nothing here ever prints the URL: messages name `host:port/db` only, so a
//! password cannot leak into logs or the ledger.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::args::DatabaseArgs;
use super::errors::{DatabaseUnavailable, UsageError};

/// A parsed, validated connection target.
#[derive(Clone)]
pub struct Database {
    config: Config,
    tls: MakeRustlsConnect,
    target: String,
    statement_timeout: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target)
            .finish()
    }
}

impl Database {
    /// Resolves the URL from the flags/environment and prepares TLS.
    /// Errors here are usage errors (exit 2): retrying cannot fix them.
    pub fn from_args(args: &DatabaseArgs) -> Result<Self> {
        let url = resolve_url(args)?;
        let mut config: Config = url.parse().map_err(|e| {
            UsageError(format!(
                "--database-url / DATABASE_URL is not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/dbname"
            ))
        })?;
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        config
            .connect_timeout(args.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .options(format!(
                "-c statement_timeout={}",
                args.statement_timeout.as_millis()
            ));
        let tls = MakeRustlsConnect::new(tls_config(args.ca_file.as_deref())?);
        let target = describe_target(&config);
        Ok(Self {
            config,
            tls,
            target,
            statement_timeout: args.statement_timeout,
        })
    }

    /// `host:port/dbname`, safe to print.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// One dedicated connection, driven on the current runtime. The harness
    /// uses it for the lock and the ledger, apart from the task pool, so a
    /// wedged task runtime cannot stop the run from recording how it ended.
    pub async fn connect(&self, application_name: &str) -> Result<Client> {
        let mut config = self.config.clone();
        config.application_name(truncate_app_name(application_name));
        let connect = config.connect(self.tls.clone());
        // connect_timeout bounds each TCP connect; this bounds the whole
        // handshake (TLS, auth) too, against a server that accepts and stalls.
        let limit = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(10));
        let (client, connection) =
            match tokio::time::timeout(limit + Duration::from_secs(1), connect).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    return Err(DatabaseUnavailable(format!(
                        "cannot connect to database at {}: {}",
                        self.target,
                        describe_pg_error(&e)
                    ))
                    .into());
                }
                Err(_) => {
                    return Err(DatabaseUnavailable(format!(
                        "cannot connect to database at {}: no answer within {}",
                        self.target,
                        super::args::format_duration(limit)
                    ))
                    .into());
                }
            };
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(database = %target, error = %e, "database connection closed");
            }
        });
        Ok(client)
    }

    /// The bounded pool tasks draw from: `size` connections at most, created
    /// lazily, each bounded by the connect timeout; waiting for a free one is
    /// bounded by `acquire_timeout`.
    pub fn pool(
        &self,
        application_name: &str,
        size: usize,
        acquire_timeout: Duration,
    ) -> Result<Pool> {
        let mut config = self.config.clone();
        config.application_name(truncate_app_name(application_name));
        let manager = Manager::from_config(
            config,
            self.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let connect = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(10));
        Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(connect + Duration::from_secs(1)))
            .recycle_timeout(Some(connect))
            .build()
            .context("building the database pool")
    }
}

fn resolve_url(args: &DatabaseArgs) -> Result<String> {
    if let Some(url) = args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        return Ok(url.trim().to_string());
    }
    if let Some(path) = &args.database_url_file {
        let url = std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!(
                "--database-url-file / DATABASE_URL_FILE {}: cannot read: {e}",
                path.display()
            ))
        })?;
        let url = url.trim();
        if url.is_empty() {
            return Err(UsageError(format!(
                "--database-url-file / DATABASE_URL_FILE {}: file is empty",
                path.display()
            ))
            .into());
        }
        return Ok(url.to_string());
    }
    Err(UsageError(
        "no database given: set --database-url or DATABASE_URL (or DATABASE_URL_FILE for a mounted secret)".into(),
    )
    .into())
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            UsageError(format!(
                "--ca-file / PGSSLROOTCERT {}: cannot read: {e}",
                path.display()
            ))
        })?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| {
                UsageError(format!(
                    "--ca-file {}: not a PEM certificate file: {e}",
                    path.display()
                ))
            })?;
            roots.add(cert).map_err(|e| {
                UsageError(format!(
                    "--ca-file {}: unusable certificate: {e}",
                    path.display()
                ))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(UsageError(format!(
                "--ca-file {}: no PEM certificates found",
                path.display()
            ))
            .into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn describe_target(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// Postgres' own message, without the Debug noise; its cause (io error) too.
pub fn describe_pg_error(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => format!("{} ({})", db.message(), db.code().code()),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    }
}

/// Postgres truncates application_name at 63 bytes; do it on a char boundary.
fn truncate_app_name(name: &str) -> &str {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> DatabaseArgs {
        DatabaseArgs {
            database_url: Some(url.into()),
            database_url_file: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn target_names_host_and_database_but_never_the_password() {
        let db = Database::from_args(&args("postgres://u:s3cr3t@db.example:6432/risk")).unwrap();
        assert_eq!(db.target(), "db.example:6432/risk");
        assert!(!format!("{db:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_malformed_url_is_a_usage_error_without_the_url_in_it() {
        let err = Database::from_args(&args("postgres://u:s3cr3t@host:notaport/x")).unwrap_err();
        assert!(err.is::<UsageError>());
        assert!(!format!("{err:#}").contains("s3cr3t"));
    }
}
