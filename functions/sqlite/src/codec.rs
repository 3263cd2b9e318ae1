//! How values are kept in columns: JSON bodies (the book's records, old
//! homes' actions) and the sort key of an id.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Bytes 4 to 12 of an id, big-endian: ordering by it orders the ids by
/// those bytes (the id index is in byte order).
pub fn sort_key(id: &str) -> u64 {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(id.bytes().skip(4)) {
        *k = b;
    }
    u64::from_be_bytes(key)
}

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
