//! Error kinds the harness acts on.
//!
//! Job code returns `anyhow::Error`; the harness decides what an error means
//! (exit code, circuit breaker, dead letter) by looking for one of these
//! markers in the error chain, or for a database/pool error underneath.

use super::outcome::ExitCode;

/// Input data is wrong (a file, a variable, a value): exit 65, no retry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Flags or configuration are wrong: exit 2, no retry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The database could not be reached at all: exit 69, retry with back-off.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DatabaseUnavailable(pub String);

/// A task failure that fails the whole run (exit 1) instead of becoming a
/// dead letter: re-running the task alone cannot help (e.g. a cache build
/// whose verification found rows missing).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AbortRun(pub String);

/// Whether an error asks to end the run rather than dead-letter the task.
pub fn aborts_run(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<AbortRun>())
}

/// What kind of failure an error is, for the breaker and the dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The task's own data or logic failed; other tasks are unaffected.
    Task,
    /// The connection, the pool or the network failed: counts toward the
    /// circuit breaker, because the next task will most likely fail too.
    Infrastructure,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Task => "error",
            FailureKind::Infrastructure => "infrastructure",
        }
    }
}

/// Classifies an error by what is in its chain.
pub fn failure_kind(err: &anyhow::Error) -> FailureKind {
    for cause in err.chain() {
        if cause.is::<DatabaseUnavailable>() {
            return FailureKind::Infrastructure;
        }
        if let Some(pool) = cause.downcast_ref::<deadpool_postgres::PoolError>() {
            return match pool {
                deadpool_postgres::PoolError::Backend(e) if is_query_error(e) => FailureKind::Task,
                _ => FailureKind::Infrastructure,
            };
        }
        if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>() {
            return if is_query_error(pg) {
                FailureKind::Task
            } else {
                FailureKind::Infrastructure
            };
        }
        if cause.is::<std::io::Error>()
            && cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(is_network_io)
        {
            return FailureKind::Infrastructure;
        }
    }
    FailureKind::Task
}

/// A server-side error about the statement itself (constraint, syntax, data),
/// as opposed to a lost or refused connection. Admin shutdowns and
/// "cannot connect now" are infrastructure, whatever their SQLSTATE class.
fn is_query_error(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return false;
    }
    match err.code() {
        Some(code) => {
            let class = &code.code()[..2];
            // 08 connection exception, 53 insufficient resources, 57 operator
            // intervention (admin shutdown, statement timeout is 57014 but
            // that one is the task's own slowness), 58 system error; 28 and
            // 3D (credentials, database gone) are not about the statement.
            let lost_connection = matches!(class, "08" | "53" | "58" | "28" | "3D");
            let operator_intervention = class == "57" && code.code() != "57014";
            !(lost_connection || operator_intervention)
        }
        None => false,
    }
}

fn is_network_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
    )
}

/// SQLSTATEs that retrying cannot fix: the credentials, the database name
/// or the role's privileges are wrong. Configuration, exit 2.
const CONFIGURATION_STATES: &[&str] = &[
    "28000", // invalid_authorization_specification (no such role, pg_hba)
    "28P01", // invalid_password
    "3D000", // invalid_catalog_name: the database does not exist
    "42501", // insufficient_privilege
];

/// A database error that is a configuration fault (exit 2): bad
/// credentials, a missing database, missing privileges, or a server
/// certificate that does not verify.
pub fn is_configuration_error(err: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    if err
        .code()
        .is_some_and(|c| CONFIGURATION_STATES.contains(&c.code()))
    {
        return true;
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if is_tls_verification_failure(cause) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// rustls refused the server's certificate (unknown CA, wrong name,
/// expired): TLS configuration, not an outage.
fn is_tls_verification_failure(cause: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
        return matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        );
    }
    cause
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| matches!(tls, rustls::Error::InvalidCertificate(_)))
}

/// Whether a database error in the chain is a configuration fault (see
/// [`is_configuration_error`]): a task failing so fails the same way for
/// every chunk, so it ends the run with exit 2 instead of filling the
/// dead-letter queue.
pub fn has_configuration_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let pg = cause.downcast_ref::<tokio_postgres::Error>().or_else(|| {
            match cause.downcast_ref::<deadpool_postgres::PoolError>() {
                Some(deadpool_postgres::PoolError::Backend(e)) => Some(e),
                _ => None,
            }
        });
        pg.is_some_and(is_configuration_error)
    })
}

/// The exit code an error that ends the whole run maps to.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    if has_configuration_error(err) {
        return ExitCode::Usage;
    }
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return ExitCode::Usage;
        }
        if cause.is::<BadInput>() {
            return ExitCode::BadInput;
        }
        if cause.is::<DatabaseUnavailable>() {
            return ExitCode::DatabaseUnavailable;
        }
    }
    if failure_kind(err) == FailureKind::Infrastructure {
        return ExitCode::DatabaseUnavailable;
    }
    ExitCode::Failed
}

/// One line: the error and its causes, `a: b: c`, as operators read it.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
}
