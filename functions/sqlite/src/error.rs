//! What the SQLite adapters can fail with, and how it reaches the ledger
//! port (as a storage failure, its message unchanged).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the local database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the local database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("a stored record could not be read ({table} `{key}`): {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("a stored record could not be read ({table} `{key}`): its {column} is `{value}`")]
    BadValue {
        table: &'static str,
        key: String,
        column: &'static str,
        value: String,
    },
    #[error("a record could not be written: {0}")]
    Encode(serde_json::Error),
    #[error("action `{0}` does not exist")]
    NoSuchAction(String),
    #[error("action `{id}` is {actual}, not {expected}")]
    WrongStatus {
        id: String,
        actual: String,
        expected: String,
    },
}

impl StoreError {
    /// Whether trying again later may succeed: the database was busy or
    /// locked by another process.
    pub fn retryable(&self) -> bool {
        let busy = |e: &rusqlite::Error| {
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        };
        match self {
            StoreError::Open { source, .. } | StoreError::Sql(source) => busy(source),
            _ => false,
        }
    }
}

/// The ledger port names no adapter's types: a SQLite error reaches it as a
/// storage failure (its message unchanged).
impl From<StoreError> for collect_delivery::ledger::LedgerError {
    fn from(e: StoreError) -> Self {
        let retryable = e.retryable();
        collect_delivery::ledger::StorageFailure::new("sqlite", retryable, e).into()
    }
}
