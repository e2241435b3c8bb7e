//! Reaching Postgres: the URL (flag, env or mounted file), TLS, the bounded
//! task pool and the run's own control connection.
//!
//! Nothing here ever prints the URL: messages name `host:port/db` only, so a
//! password cannot leak into logs or the ledger.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use deadpool_postgres::{ClientWrapper, Hook, HookError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{CancelToken, Client, Config};
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
    backends: BackendRegistry,
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
        // tokio-postgres knows disable/prefer/require only; verify-ca and
        // verify-full are libpq's names for TLS that checks the server's
        // certificate (and, for verify-full, its host name).
        let (url, verify) = take_verify_mode(&url);
        let mut config: Config = url.parse().map_err(|e| {
            UsageError(format!(
                "--database-url / DATABASE_URL is not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/dbname[?sslmode=require|verify-ca|verify-full]"
            ))
        })?;
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if verify.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        config
            .connect_timeout(args.connect_timeout)
            // A peer that vanishes (host down, connection dropped by a NAT)
            // is noticed by the kernel within ~25 s even on an idle socket.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            // Sent data left unacknowledged this long fails the socket.
            .tcp_user_timeout(Duration::from_secs(30))
            .options(format!(
                "-c statement_timeout={}",
                args.statement_timeout.as_millis()
            ));
        let tls = MakeRustlsConnect::new(tls_config(
            args.ca_file.as_deref(),
            verify.unwrap_or(TlsVerify::Full),
        )?);
        let target = describe_target(&config);
        Ok(Self {
            config,
            tls,
            target,
            statement_timeout: args.statement_timeout,
            backends: BackendRegistry::default(),
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
                Ok(Err(e)) => return Err(self.connect_error(e)),
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

    /// Why a connection could not be made, as the exit code table wants
    /// it: a wrong password, a missing database or a certificate that
    /// does not verify is configuration (exit 2); anything else (refused,
    /// reset, too many connections, shutting down) is the database being
    /// unavailable (exit 69).
    fn connect_error(&self, e: tokio_postgres::Error) -> anyhow::Error {
        let msg = format!(
            "cannot connect to database at {}: {}",
            self.target,
            describe_pg_error(&e)
        );
        if super::errors::is_configuration_error(&e) {
            UsageError(msg).into()
        } else {
            DatabaseUnavailable(msg).into()
        }
    }

    /// The bounded pool tasks draw from: `size` connections at most, created
    /// lazily, each bounded by the connect timeout; waiting for a free one is
    /// bounded by `acquire_timeout`. A pooled connection is checked with an
    /// empty query before it is handed out, bounded by `call_limit`: one
    /// that does not answer (a stalled peer, a query of a timed-out task
    /// still running) is dropped and another made.
    pub fn pool(
        &self,
        application_name: &str,
        size: usize,
        acquire_timeout: Duration,
        call_limit: Duration,
    ) -> Result<Pool> {
        let mut config = self.config.clone();
        config.application_name(truncate_app_name(application_name));
        let manager = Manager::from_config(
            config,
            self.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let connect = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(10));
        let on_create = self.backends.clone();
        let on_recycle = self.backends.clone();
        Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(acquire_timeout))
            .create_timeout(Some(connect + Duration::from_secs(1)))
            .recycle_timeout(Some(call_limit))
            .post_create(Hook::sync_fn(move |client, metrics| {
                on_create.note(client, metrics.created);
                Ok::<(), HookError>(())
            }))
            .post_recycle(Hook::sync_fn(move |client, metrics| {
                on_recycle.note(client, metrics.created);
                Ok::<(), HookError>(())
            }))
            .build()
            .context("building the database pool")
    }

    /// Sends a cancel request for whatever the pool connections last handed
    /// to task `task` are running now (a query of a timed-out task, a wait
    /// on a lock), each bounded by `limit`. Returns how many were sent.
    /// Returns (connections the task held, cancel requests the server took).
    pub async fn cancel_task_backends(&self, task: u64, limit: Duration) -> (usize, usize) {
        let tokens = self.backends.held_by(Some(task));
        let held = tokens.len();
        (held, self.cancel_all(tokens, limit).await)
    }

    /// Sends a cancel request to every pool connection this run made.
    pub async fn cancel_every_backend(&self, limit: Duration) -> usize {
        let tokens = self.backends.held_by(None);
        self.cancel_all(tokens, limit).await
    }

    /// Sends the cancel requests at once, all of them bounded by `limit`
    /// together: against a stalled server each would wait that long.
    async fn cancel_all(&self, tokens: Vec<CancelToken>, limit: Duration) -> usize {
        let mut requests = tokio::task::JoinSet::new();
        for token in tokens {
            let tls = self.tls.clone();
            requests.spawn(async move { token.cancel_query(tls).await.is_ok() });
        }
        let mut sent = 0;
        let _ = tokio::time::timeout(limit, async {
            while let Some(done) = requests.join_next().await {
                if matches!(done, Ok(true)) {
                    sent += 1;
                }
            }
        })
        .await;
        requests.abort_all();
        sent
    }
}

/// Awaits one database call of the run's own (ledger, chunks, dead
/// letters) for at most `limit`. No answer in time is the database being
/// unavailable (exit 69, counted by the breaker), and the error names the
/// call: `statement_timeout` cannot help when the server never got the query.
pub async fn bounded<T>(
    what: &str,
    limit: Duration,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::pin!(call);
    if let Ok(result) = tokio::time::timeout(limit, &mut call).await {
        return result;
    }
    // An answer may be sitting in the socket, not yet read by the
    // connection's driver (e.g. this process was itself paused): one short
    // second look before calling the database stalled.
    match tokio::time::timeout(Duration::from_millis(200), call).await {
        Ok(result) => result,
        Err(_) => Err(DatabaseUnavailable(format!(
            "the database stalled: {what} got no answer within {}",
            super::args::format_duration(limit)
        ))
        .into()),
    }
}

tokio::task_local! {
    /// The task a pool connection is being handed to (see `as_task`).
    static CURRENT_TASK: u64;
}

/// Runs `work` as task `task`: every pool connection it takes is noted as
/// held by that task, so the controller can cancel its server-side work if
/// the task times out.
pub async fn as_task<F: std::future::Future>(task: u64, work: F) -> F::Output {
    CURRENT_TASK.scope(task, work).await
}

/// Which task each pool connection was last handed to, with the token to
/// cancel what it runs. A connection is known by its creation instant (the
/// pool's metrics keep it for the connection's life).
#[derive(Clone, Default)]
struct BackendRegistry {
    inner: Arc<Mutex<HashMap<Instant, Owner>>>,
}

/// The task a connection was last handed to (None: planning, hooks) and
/// the token that cancels what it runs.
type Owner = (Option<u64>, CancelToken);

impl BackendRegistry {
    fn note(&self, client: &ClientWrapper, created: Instant) {
        let task = CURRENT_TASK.try_with(|t| *t).ok();
        if let Ok(mut map) = self.inner.lock() {
            // Connections the pool dropped stay listed; a cancel request to
            // a closed backend is harmless. Keep the list bounded anyway.
            if map.len() > 4096 {
                map.clear();
            }
            map.insert(created, (task, client.cancel_token()));
        }
    }

    /// Tokens of connections last handed to `task`, or of all with None.
    fn held_by(&self, task: Option<u64>) -> Vec<CancelToken> {
        let Ok(map) = self.inner.lock() else {
            return Vec::new();
        };
        map.values()
            .filter(|(owner, _)| task.is_none() || *owner == task)
            .map(|(_, token)| token.clone())
            .collect()
    }
}

/// How much of the server's certificate TLS checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsVerify {
    /// The chain up to a trusted CA, not the host name (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`; also what `require` does
    /// here: this client never accepts an unverified certificate).
    Full,
}

/// Replaces `sslmode=verify-ca|verify-full` (URL query or key=value form)
/// by `require`, returning what it asked for.
fn take_verify_mode(url: &str) -> (String, Option<TlsVerify>) {
    for (word, mode) in [
        ("sslmode=verify-full", TlsVerify::Full),
        ("sslmode=verify-ca", TlsVerify::Chain),
    ] {
        if let Some(at) = url.find(word) {
            let before = url[..at].chars().last();
            let after = url[at + word.len()..].chars().next();
            let starts = matches!(before, None | Some('?' | '&' | ' ' | '\t'));
            let ends = matches!(after, None | Some('&' | ' ' | '\t' | '#'));
            if starts && ends {
                let rewritten = format!("{}sslmode=require{}", &url[..at], &url[at + word.len()..]);
                return (rewritten, Some(mode));
            }
        }
    }
    (url.to_string(), None)
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

fn tls_config(ca_file: Option<&Path>, verify: TlsVerify) -> Result<rustls::ClientConfig> {
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
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?;
    Ok(match verify {
        TlsVerify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        TlsVerify::Chain => {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .context("configuring TLS certificate verification")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                .with_no_client_auth()
        }
    })
}

/// `verify-ca`: the certificate must chain to a trusted CA; the name in it
/// need not match the host (libpq's meaning).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
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
    fn verify_modes_are_accepted_in_urls_and_key_value_strings() {
        for url in [
            "postgres://u@db.example/risk?sslmode=verify-full",
            "postgres://u@db.example/risk?application_name=x&sslmode=verify-ca",
            "host=db.example dbname=risk sslmode=verify-full",
        ] {
            Database::from_args(&args(url)).unwrap_or_else(|e| panic!("{url}: {e:#}"));
        }
        assert_eq!(
            take_verify_mode("postgres://h/d?sslmode=verify-ca&x=1"),
            (
                "postgres://h/d?sslmode=require&x=1".to_string(),
                Some(TlsVerify::Chain)
            )
        );
        assert_eq!(take_verify_mode("postgres://h/d?sslmode=require").1, None);
        let err = Database::from_args(&args("postgres://h/d?sslmode=verify-nothing")).unwrap_err();
        assert!(err.is::<UsageError>());
    }

    #[test]
    fn a_malformed_url_is_a_usage_error_without_the_url_in_it() {
        let err = Database::from_args(&args("postgres://u:s3cr3t@host:notaport/x")).unwrap_err();
        assert!(err.is::<UsageError>());
        assert!(!format!("{err:#}").contains("s3cr3t"));
    }
}
