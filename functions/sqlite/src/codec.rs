//! How values are kept in columns: JSON bodies (the book's records, old
//! homes' actions).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

pub fn encode<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::Encode)
}

pub fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &str,
    body: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|source| StoreError::Corrupt {
        table,
        key: key.to_string(),
        source,
    })
}
