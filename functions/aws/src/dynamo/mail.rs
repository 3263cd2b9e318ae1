//! Mail events (SES's and the ERP's), stored once under their message (or
//! action) with a TTL: what reconciliation reads before a message left
//! `sending` is sent again.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Dynamo;
use super::codec::{decode, encode, item, n};
use crate::error::{AwsError, CorruptError};
use crate::keys::{self, TTL};

/// How long mail events are kept (TTL), in days.
pub const MAIL_EVENT_DAYS: i64 = 400;

/// A stored mail event (SES's or the ERP's), as the events function wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailEvent {
    pub event_id: String,
    /// `send`, `delivery`, `bounce`, … for SES; the event kind otherwise.
    pub kind: String,
    pub date: NaiveDate,
    pub message_id: Option<String>,
    pub action_id: Option<String>,
    /// SES's message id, when the event came from SES.
    pub provider_message_id: Option<String>,
}

impl Dynamo {
    /// Stores a mail event once under its message (or action), with a TTL.
    /// Returns whether it was new.
    pub async fn put_mail_event(&self, e: &MailEvent) -> Result<bool, AwsError> {
        let pk = match (&e.message_id, &e.action_id) {
            (Some(m), _) => keys::message_pk(m),
            (None, Some(a)) => keys::action_pk(a),
            (None, None) => {
                return Err(CorruptError::mail_event_without_target(&e.event_id).into());
            }
        };
        let mut it = item(
            pk,
            keys::mail_event_sk(&e.event_id),
            "mail_event",
            encode(e)?,
        );
        let expires = e
            .date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp())
            .unwrap_or_default()
            + MAIL_EVENT_DAYS * 86_400;
        it.insert(TTL.to_string(), n(expires));
        self.put_new(it).await
    }

    /// The mail events stored for a message.
    pub async fn mail_events(&self, message_id: &str) -> Result<Vec<MailEvent>, AwsError> {
        self.query_prefix(&keys::message_pk(message_id), keys::EVENT_PREFIX)
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}
