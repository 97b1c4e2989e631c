//! The persistence layer's one error type, mapped from diesel by error *kind*
//! (SQLite gives no constraint names).

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A unique constraint said no (a duplicate).
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// A check or foreign-key constraint said no.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// Another writer changed the row first; the caller may retry.
    #[error("concurrent update")]
    Stale,
    /// The database cannot be reached, the pool is exhausted, or it is locked: answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A rule of the domain said no inside a transaction.
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(kind, info) => {
                let message = info.message().to_owned();
                match kind {
                    DatabaseErrorKind::UniqueViolation => DbError::Duplicate(message),
                    DatabaseErrorKind::ForeignKeyViolation
                    | DatabaseErrorKind::CheckViolation
                    | DatabaseErrorKind::NotNullViolation => DbError::Constraint(message),
                    DatabaseErrorKind::SerializationFailure => DbError::Stale,
                    // PostgreSQL chose this transaction as a deadlock's victim and rolled it
                    // back (40P01, which diesel does not name): a lost race, to be retried.
                    _ if message.starts_with("deadlock detected") => DbError::Stale,
                    DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection => {
                        DbError::Unavailable(message)
                    }
                    _ if is_busy(&message) => DbError::Unavailable(message),
                    _ => DbError::Internal(message),
                }
            }
            DieselError::BrokenTransactionManager => DbError::Unavailable("broken transaction".into()),
            other => {
                let message = other.to_string();
                if is_busy(&message) { DbError::Unavailable(message) } else { DbError::Internal(message) }
            }
        }
    }
}

fn is_busy(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("database is busy")
        || m.contains("server closed the connection")
        || m.contains("connection refused")
        || m.contains("terminating connection")
        || m.contains("no connection to the server")
        || m.contains("canceling statement due to statement timeout")
        || m.contains("lock timeout")
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}
