//! The ledger port on DynamoDB: the same conditions as the SQLite and
//! in-memory adapters, as conditional writes (the conformance suite of
//! `collect_testkit::conformance` runs against it on the local endpoint).
//!
//! Items (see the table in the [module docs](super)):
//! - a message is `M#<message id>`/`MESSAGE`, its whole [`StoredMessage`] in
//!   `doc` and its status in `status`; while it is planned or sending it
//!   also carries `GSI1PK = S#<shard>#MESSAGES`, so a worker finds every
//!   unfinished message of its shard with one Query (even when the
//!   customer has no open invoice any more); the write that finishes it
//!   removes the index keys;
//! - an action is `C#<customer>`/`ACTION#<action id>` (written in
//!   [`super::dynamo`]): its [`ActionRecord`] in `doc`, its status, and its
//!   audit trail in `trail`, one line appended by every write that changes
//!   it;
//! - a lease is `L#<name>`/`LEASE`, taken with a conditional put (nobody
//!   holds it, its holder's time ran out, or it is ours).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, NaiveDate, Utc};

use super::dynamo::{
    BATCH_ATTEMPTS, Dynamo, Item, backoff, conditional_failed, decode, encode, get_s, item, n, s,
};
use super::error::{AwsError, RequestError, Service, ServiceError};
use super::keys::{self, GSI1, GSI1PK, GSI1SK, PK, SK, STATUS};
use collect_delivery::ledger::{
    ContactHold, CorruptRecord, HoldEnd, Lease, LeaseHolder, LeaseOutcome, Ledger, LedgerError,
    LogEntry, MessageStatus, Move, Recorded, Scope, StorageFailure, StoredMessage, move_one,
};
use collect_engine::book::Book;
use collect_engine::domain::{ActionId, ActionRecord, ActionStatus};

/// The attribute holding a lease's expiry, in epoch milliseconds.
const EXPIRES_MS: &str = "expires_ms";
/// The attribute holding a lease holder's run id.
const HOLDER: &str = "holder";
/// How many message writes (or moves of a batch) are in flight at once.
const PARALLEL_PUTS: usize = 16;
/// BatchGetItem takes at most 100 keys.
const BATCH_GET: usize = 100;

impl From<AwsError> for LedgerError {
    fn from(e: AwsError) -> LedgerError {
        match e {
            AwsError::Corrupt(e) => CorruptRecord {
                key: e.key().to_string(),
                reason: e.reason(),
            }
            .into(),
            other => {
                let retryable = other.retryable();
                StorageFailure::new("dynamodb", retryable, other).into()
            }
        }
    }
}

impl Dynamo {
    fn message_item(&self, m: &StoredMessage) -> Result<Item, AwsError> {
        let mut it = item(
            keys::message_pk(&m.message_id),
            keys::MESSAGE_SK.to_string(),
            "message",
            encode(m)?,
        );
        it.insert(STATUS.to_string(), s(m.status.as_str()));
        it.insert(keys::CUSTOMER_ID.to_string(), s(m.customer_id.clone()));
        if m.status.is_unfinished() {
            let shard = keys::shard_of(&m.customer_id, self.shards());
            it.insert(GSI1PK.to_string(), s(keys::unfinished_gsi_pk(shard)));
            it.insert(
                GSI1SK.to_string(),
                s(keys::unfinished_gsi_sk(m.planned_on, &m.message_id)),
            );
        }
        Ok(it)
    }

    /// Writes an item on a condition; `Ok(false)` when the condition failed.
    async fn put_if(
        &self,
        it: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, AwsError> {
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(it))
            .condition_expression(condition);
        for (k, v) in names {
            put = put.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            put = put.expression_attribute_values(*k, v.clone());
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "PutItem", e)),
        }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, AwsError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        Ok(out.item)
    }

    async fn unfinished_of_shard(&self, shard: u32) -> Result<Vec<StoredMessage>, AwsError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(GSI1)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_values(":pk", s(keys::unfinished_gsi_pk(shard)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::sdk(Service::DynamoDb, "Query", e))?;
            // The index holds keys only: the messages themselves are read
            // consistently (their status decides what this run does), a
            // hundred to a request.
            let keys: Vec<String> = page
                .items()
                .iter()
                .filter_map(|it| get_s(it, PK))
                .map(str::to_string)
                .collect();
            for full in self.get_messages(&keys).await? {
                let m: StoredMessage = decode(&full)?;
                if m.status.is_unfinished() {
                    out.push(m);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Message items by partition key, with consistent BatchGetItem
    /// requests of at most [`BATCH_GET`] keys; keys DynamoDB leaves
    /// unprocessed are asked again with backoff, a bounded number of times.
    /// Messages not found are left out; the order is DynamoDB's.
    async fn get_messages(&self, pks: &[String]) -> Result<Vec<Item>, AwsError> {
        let mut out = Vec::with_capacity(pks.len());
        for chunk in pks.chunks(BATCH_GET) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|pk| {
                    Item::from([
                        (PK.to_string(), s(pk.clone())),
                        (SK.to_string(), s(keys::MESSAGE_SK)),
                    ])
                })
                .collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                if attempt >= BATCH_ATTEMPTS {
                    return Err(ServiceError::unprocessed(
                        "BatchGetItem",
                        pending.len(),
                        "message",
                        BATCH_ATTEMPTS,
                    )
                    .into());
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| RequestError::new(Service::DynamoDb, "BatchGetItem", e))?;
                let page = self
                    .client()
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(|e| AwsError::sdk(Service::DynamoDb, "BatchGetItem", e))?;
                out.extend(
                    page.responses
                        .and_then(|mut r| r.remove(self.table()))
                        .unwrap_or_default(),
                );
                pending = page
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table()))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(out)
    }

    fn lease_of(it: &Item) -> Result<Lease, AwsError> {
        decode(it)
    }

    /// A message as recorded, read consistently; `None` when no message
    /// has the id.
    pub async fn stored_message(
        &self,
        message_id: &str,
    ) -> Result<Option<StoredMessage>, AwsError> {
        match self
            .get(keys::message_pk(message_id), keys::MESSAGE_SK)
            .await?
        {
            Some(it) => Ok(Some(decode(&it)?)),
            None => Ok(None),
        }
    }
}

impl Ledger for Dynamo {
    async fn load_book(
        &self,
        scope: &Scope,
        _day: NaiveDate,
        _since: NaiveDate,
    ) -> Result<Book, LedgerError> {
        let customers = match scope {
            Scope::Shard { shard, through } => self.open_customers(*shard, *through).await?,
            Scope::All => {
                let mut all = Vec::new();
                for shard in 0..self.shards() {
                    all.extend(self.shard_customers(shard).await?);
                }
                all
            }
        };
        Ok(Dynamo::load_book(self, &customers).await?)
    }

    async fn customer_book(&self, customer_id: &str) -> Result<Book, LedgerError> {
        Ok(Dynamo::load_book(self, &[customer_id.to_string()]).await?)
    }

    async fn hold_contact(&self, hold: &ContactHold) -> Result<bool, LedgerError> {
        Ok(self.put_contact_hold(hold).await?)
    }

    async fn end_contact_hold(
        &self,
        customer_id: &str,
        address: &str,
        end: &HoldEnd,
    ) -> Result<bool, LedgerError> {
        Ok(Dynamo::end_contact_hold(self, customer_id, address, end).await?)
    }

    async fn contact_holds(&self, customer_id: &str) -> Result<Vec<ContactHold>, LedgerError> {
        Ok(Dynamo::contact_holds(self, customer_id).await?)
    }

    async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, LedgerError> {
        Ok(Dynamo::record_actions(self, records, previous, day).await?)
    }

    async fn move_action(
        &self,
        record: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
    ) -> Result<bool, LedgerError> {
        if expected.is_empty() {
            return Ok(false);
        }
        Ok(self.put_action(record, expected, day).await?)
    }

    async fn trail(&self, action: &ActionRecord) -> Result<Vec<LogEntry>, LedgerError> {
        Ok(self
            .action_trail(&action.customer_id, &action.action_id)
            .await?)
    }

    async fn put_message(&self, m: &StoredMessage) -> Result<bool, LedgerError> {
        Ok(self
            .put_if(
                self.message_item(m)?,
                "attribute_not_exists(#pk) OR #status = :cancelled",
                &[("#pk", PK), ("#status", STATUS)],
                &[(":cancelled", s(MessageStatus::Cancelled.as_str()))],
            )
            .await?)
    }

    /// Each message is its own conditional PutItem, up to
    /// `PARALLEL_PUTS` (16) at a time; the answer keeps the order of
    /// `messages`.
    async fn put_messages(&self, messages: &[StoredMessage]) -> Result<Vec<bool>, LedgerError> {
        let mut out = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(PARALLEL_PUTS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, m) in chunk.iter().enumerate() {
                let me = self.clone();
                let m = m.clone();
                tasks.spawn(async move { (i, me.put_message(&m).await) });
            }
            let mut written = vec![false; chunk.len()];
            while let Some(joined) = tasks.join_next().await {
                let (i, result) = joined.map_err(|e| AwsError::Task {
                    operation: "PutItem",
                    source: e,
                })?;
                if let Some(slot) = written.get_mut(i) {
                    *slot = result?;
                }
            }
            out.extend(written);
        }
        Ok(out)
    }

    /// The moves of a batch run concurrently, up to `PARALLEL_PUTS` (16) at
    /// a time; each move's writes keep their order and their conditions
    /// ([`move_one`], as the default runs them one move after another), and
    /// the answer keeps the order of `moves`.
    async fn move_batch(&self, moves: &[Move]) -> Result<Vec<Option<Vec<bool>>>, LedgerError> {
        let mut out = Vec::with_capacity(moves.len());
        for chunk in moves.chunks(PARALLEL_PUTS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, mv) in chunk.iter().enumerate() {
                let me = self.clone();
                let mv = mv.clone();
                tasks.spawn(async move { (i, move_one(&me, &mv).await) });
            }
            let mut results = vec![None; chunk.len()];
            while let Some(joined) = tasks.join_next().await {
                let (i, result) = joined.map_err(|e| AwsError::Task {
                    operation: "UpdateItem",
                    source: e,
                })?;
                if let Some(slot) = results.get_mut(i) {
                    *slot = result?;
                }
            }
            out.extend(results);
        }
        Ok(out)
    }

    async fn message(&self, message_id: &str) -> Result<Option<StoredMessage>, LedgerError> {
        Ok(self.stored_message(message_id).await?)
    }

    async fn unfinished_messages(&self, scope: &Scope) -> Result<Vec<StoredMessage>, LedgerError> {
        let mut out = match scope {
            Scope::Shard { shard, .. } => self.unfinished_of_shard(*shard).await?,
            Scope::All => {
                let mut all = Vec::new();
                for shard in 0..self.shards() {
                    all.extend(self.unfinished_of_shard(shard).await?);
                }
                all
            }
        };
        out.sort_by(|a, b| (a.planned_on, &a.message_id).cmp(&(b.planned_on, &b.message_id)));
        Ok(out)
    }

    async fn move_message(
        &self,
        next: &StoredMessage,
        from: MessageStatus,
    ) -> Result<bool, LedgerError> {
        Ok(self
            .put_if(
                self.message_item(next)?,
                "#status = :from",
                &[("#status", STATUS)],
                &[(":from", s(from.as_str()))],
            )
            .await?)
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        let pk = keys::lease_pk(name);
        let mut current = self.get(pk.clone(), keys::LEASE_SK).await?;
        // Two rounds at most: a lease released between the refused put and
        // the read-back is free, and the second put takes it (or finds the
        // run that took it meanwhile).
        for _ in 0..2 {
            let since = match &current {
                Some(it) => {
                    let l = Dynamo::lease_of(it)?;
                    if l.holder.id == holder.id {
                        l.since
                    } else {
                        now
                    }
                }
                None => now,
            };
            let lease = Lease {
                name: name.to_string(),
                holder: holder.clone(),
                since,
                expires: now.checked_add_signed(ttl).unwrap_or(now),
            };
            let mut it = item(
                pk.clone(),
                keys::LEASE_SK.to_string(),
                "lease",
                encode(&lease)?,
            );
            it.insert(EXPIRES_MS.to_string(), n(lease.expires.timestamp_millis()));
            it.insert(HOLDER.to_string(), s(holder.id.clone()));
            let taken = self
                .put_if(
                    it,
                    "attribute_not_exists(#pk) OR #expires < :now OR #holder = :me",
                    &[("#pk", PK), ("#expires", EXPIRES_MS), ("#holder", HOLDER)],
                    &[
                        (":now", n(now.timestamp_millis())),
                        (":me", s(holder.id.clone())),
                    ],
                )
                .await?;
            if taken {
                return Ok(LeaseOutcome::Taken(lease));
            }
            current = self.get(pk.clone(), keys::LEASE_SK).await?;
            if let Some(it) = &current {
                return Ok(LeaseOutcome::HeldBy(Dynamo::lease_of(it)?));
            }
        }
        Err(AwsError::LeaseRace {
            name: name.to_string(),
        }
        .into())
    }

    async fn release_lease(&self, name: &str, holder: &LeaseHolder) -> Result<(), LedgerError> {
        let out = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(keys::lease_pk(name)))
            .key(SK, s(keys::LEASE_SK))
            .condition_expression("#holder = :me")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_values(":me", s(holder.id.clone()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "DeleteItem", e).into()),
        }
    }
}
