//! What a failed database call means for the ledger: try again, the database
//! is down, or a ledger answer.

use tokio_postgres::error::SqlState;

use crate::domain::ledger::LedgerError;

/// The outcome of one attempt at a ledger operation that did not succeed.
#[derive(Debug)]
pub enum Fail {
    /// A conflict with a concurrent transaction (serialization failure,
    /// deadlock): nothing happened; the same call may simply run again.
    Conflict(String),
    /// The database could not be reached or went away mid-call: whatever the
    /// transaction did was rolled back, unless its COMMIT was already on the
    /// wire, in which case it may have happened in full. Every ledger call is
    /// safe to repeat (idempotency keys, state checks), so it is retried.
    Down(String),
    /// The database is fine but this replica had no free connection or the
    /// schema is still being put in place: try again, the health stays.
    Busy(String),
    /// A definite answer.
    Ledger(LedgerError),
}

impl From<LedgerError> for Fail {
    fn from(e: LedgerError) -> Self {
        Fail::Ledger(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        classify(&e)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => classify(&e),
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                Fail::Busy("no database connection became free in time".into())
            }
            PoolError::Timeout(kind) => {
                Fail::Down(format!("the database did not answer in time ({kind:?})"))
            }
            PoolError::Closed => Fail::Ledger(LedgerError::Unavailable(
                "the ledger is shutting down".into(),
            )),
            PoolError::NoRuntimeSpecified => Fail::Ledger(LedgerError::Unavailable(
                "connection pool has no runtime".into(),
            )),
            PoolError::PostCreateHook(e) => Fail::Down(format!("new connection refused: {e}")),
        }
    }
}

/// Sorts a database error into [`Fail`].
pub fn classify(e: &tokio_postgres::Error) -> Fail {
    let Some(code) = e.code() else {
        // No SQLSTATE: the socket closed, timed out or could not connect.
        return Fail::Down(describe(e));
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        return Fail::Conflict(describe(e));
    }
    let class = &code.code()[..2];
    let down = matches!(class, "08" | "57" | "53" | "58")
        // CockroachDB: "result is ambiguous" after a node failure.
        || *code == SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN
        // A statement cut short by statement_timeout or a cancel.
        || *code == SqlState::QUERY_CANCELED;
    if down {
        Fail::Down(describe(e))
    } else {
        // Anything else is a statement the database refuses outright:
        // repeating it cannot help, and it means a bug on this side.
        tracing::error!(error = %describe(e), "ledger statement refused by the database");
        Fail::Ledger(LedgerError::Unavailable(describe(e)))
    }
}

/// The error with the database's own message and code when there is one.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}
