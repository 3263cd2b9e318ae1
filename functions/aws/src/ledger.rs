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
//! - a lease is `L#<name>`/`LEASE`, taken with a put conditional on the
//!   lease as read (the decision is [`lease_decision`]'s: nobody holds it,
//!   its holder's time ran out, or it is ours); its fencing token is also
//!   the attribute `token`, which the move of messages to `sending` checks
//!   in the same `TransactWriteItems` (a `ConditionCheck` on the lease
//!   item). A lease given back is kept, expired, so tokens only grow.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem,
};
use chrono::{DateTime, NaiveDate, Utc};

use super::dynamo::{
    BATCH_ATTEMPTS, Dynamo, Item, backoff, conditional_failed, decode, encode, get_s, item, n, s,
};
use super::error::{AwsError, RequestError, Service, ServiceError};
use super::keys::{self, DOC, GSI1, GSI1PK, GSI1SK, PK, SK, STATUS};
use collect_delivery::ledger::{
    ContactHold, CorruptRecord, Fence, Fenced, HoldEnd, LIVE, Lease, LeaseHolder, LeaseOutcome,
    Ledger, LedgerError, LogEntry, MessageStatus, Move, Recorded, Scope, StorageFailure,
    StoredMessage, TrailNote, WorkEntry, lease_decision, move_one,
};
use collect_engine::book::Book;
use collect_engine::domain::{ActionId, ActionRecord, ActionStatus, Customer, Event};

/// The attribute holding a lease's expiry, in epoch milliseconds.
const EXPIRES_MS: &str = "expires_ms";
/// The attribute holding a lease holder's run id.
const HOLDER: &str = "holder";
/// The attribute holding a lease's fencing token (a number).
const TOKEN: &str = "token";
/// Messages moved to `sending` in one `TransactWriteItems`, beside the
/// lease's `ConditionCheck` (25 items: moto's limit, and DynamoDB's before
/// 2022; today's is 100).
const FENCED_MESSAGES: usize = 24;
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
        self.get_items(pks, keys::MESSAGE_SK, "message").await
    }

    /// Items of sort key `sk` by partition key, as [`Dynamo::get_messages`].
    async fn get_items(
        &self,
        pks: &[String],
        sk: &str,
        what: &'static str,
    ) -> Result<Vec<Item>, AwsError> {
        let mut out = Vec::with_capacity(pks.len());
        for chunk in pks.chunks(BATCH_GET) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|pk| Item::from([(PK.to_string(), s(pk.clone())), (SK.to_string(), s(sk))]))
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
                        what,
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

    fn lease_item(lease: &Lease) -> Result<Item, AwsError> {
        let mut it = item(
            keys::lease_pk(&lease.name),
            keys::LEASE_SK.to_string(),
            "lease",
            encode(lease)?,
        );
        it.insert(EXPIRES_MS.to_string(), n(lease.expires.timestamp_millis()));
        it.insert(HOLDER.to_string(), s(lease.holder.id.clone()));
        it.insert(
            TOKEN.to_string(),
            n(i64::try_from(lease.token).unwrap_or(i64::MAX)),
        );
        Ok(it)
    }

    /// Whether the lease `fence` names still carries its token (read
    /// consistently).
    async fn fence_holds(&self, fence: &Fence) -> Result<bool, AwsError> {
        Ok(
            match self
                .get(keys::lease_pk(&fence.lease), keys::LEASE_SK)
                .await?
            {
                Some(it) => Dynamo::lease_of(&it)?.token == fence.token,
                None => false,
            },
        )
    }

    /// Puts the messages of `moves` (each on its `from` status) in one
    /// `TransactWriteItems` with a `ConditionCheck` of the lease's token.
    /// A message whose condition fails is left out and the rest tried
    /// again; [`Fenced::LeaseLost`] as soon as the lease's fails. Whether
    /// each message was written.
    async fn put_messages_fenced(
        &self,
        fence: &Fence,
        moves: &[&Move],
    ) -> Result<Fenced<Vec<bool>>, AwsError> {
        const OP: &str = "TransactWriteItems";
        let request = |e| RequestError::new(Service::DynamoDb, OP, e);
        let mut written = vec![false; moves.len()];
        let mut pending: Vec<usize> = (0..moves.len()).collect();
        while !pending.is_empty() {
            let mut items = Vec::with_capacity(pending.len() + 1);
            for &k in &pending {
                let Some(mv) = moves.get(k) else { continue };
                let put = Put::builder()
                    .table_name(self.table())
                    .set_item(Some(self.message_item(&mv.next)?))
                    .condition_expression("#status = :from")
                    .expression_attribute_names("#status", STATUS)
                    .expression_attribute_values(":from", s(mv.from.as_str()))
                    .build()
                    .map_err(request)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            let check = ConditionCheck::builder()
                .table_name(self.table())
                .key(PK, s(keys::lease_pk(&fence.lease)))
                .key(SK, s(keys::LEASE_SK))
                .condition_expression("#token = :token")
                .expression_attribute_names("#token", TOKEN)
                .expression_attribute_values(
                    ":token",
                    n(i64::try_from(fence.token).unwrap_or(i64::MAX)),
                )
                .build()
                .map_err(request)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
            let sent = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let e = match sent {
                Ok(_) => {
                    for &k in &pending {
                        if let Some(w) = written.get_mut(k) {
                            *w = true;
                        }
                    }
                    return Ok(Fenced::Written(written));
                }
                Err(e) => e,
            };
            let failed: Vec<bool> = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code() == Some("ConditionalCheckFailed"))
                    .collect(),
                _ => Vec::new(),
            };
            if failed.get(pending.len()).copied().unwrap_or(false) {
                return Ok(Fenced::LeaseLost);
            }
            let before = pending.len();
            let mut at = 0;
            pending.retain(|_| {
                let keep = !failed.get(at).copied().unwrap_or(false);
                at += 1;
                keep
            });
            if pending.len() == before {
                // Not a condition of ours (a conflict with another
                // transaction, throttling): the run stops, the next one
                // finishes.
                return Err(AwsError::sdk(Service::DynamoDb, OP, e));
            }
        }
        // Every message had moved on: nothing written, the lease unchecked.
        Ok(if self.fence_holds(fence).await? {
            Fenced::Written(written)
        } else {
            Fenced::LeaseLost
        })
    }

    /// The actions of moves whose messages are written, each from `planned`
    /// or `sending`, up to `PARALLEL_PUTS` moves at a time: whether each
    /// action moved, per move.
    async fn move_actions_of(&self, moves: &[&Move]) -> Result<Vec<Vec<bool>>, AwsError> {
        let mut out = Vec::with_capacity(moves.len());
        for chunk in moves.chunks(PARALLEL_PUTS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, mv) in chunk.iter().enumerate() {
                let me = self.clone();
                let mv = (*mv).clone();
                tasks.spawn(async move {
                    let mut moved = Vec::with_capacity(mv.actions.len());
                    for a in &mv.actions {
                        match me.put_action(a, &LIVE, mv.day).await {
                            Ok(ok) => moved.push(ok),
                            Err(e) => return (i, Err(e)),
                        }
                    }
                    (i, Ok(moved))
                });
            }
            out.extend(in_order(tasks, chunk.len(), "UpdateItem").await?);
        }
        Ok(out)
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
    /// Per customer its live items and payment history (never its folded
    /// invoices; see `dynamo::fold`). A shard's sweep (the worker holding
    /// the shard's lease) also folds what may fold before `since`; the
    /// whole book (the desk's audit page) reads without writing, unless
    /// [`Dynamo::folding_every_scope`] says otherwise.
    async fn load_book(
        &self,
        scope: &Scope,
        _day: NaiveDate,
        since: NaiveDate,
    ) -> Result<Book, LedgerError> {
        let (customers, fold) = match scope {
            Scope::Shard { shard, through } => (self.open_customers(*shard, *through).await?, true),
            Scope::All => {
                let mut all = Vec::new();
                for shard in 0..self.shards() {
                    all.extend(self.shard_customers(shard).await?);
                }
                (all, self.folds_every_scope())
            }
        };
        Ok(self.load_live(&customers, since, fold).await?)
    }

    /// The customer's whole history (explain, the desk's pages): the live
    /// items and the folded copies.
    async fn customer_book(&self, customer_id: &str) -> Result<Book, LedgerError> {
        Ok(Dynamo::load_book(self, &[customer_id.to_string()]).await?)
    }

    /// The checks before sending read what the sweep decides from: per
    /// customer the live items and the payment history, not the folded
    /// invoices (settled, their steps before any cap's window), so the
    /// checks' reads do not grow with history either.
    async fn customer_books(
        &self,
        customer_ids: &[&str],
        _carried: &[&str],
    ) -> Result<HashMap<String, Book>, LedgerError> {
        let mut out = HashMap::with_capacity(customer_ids.len());
        for id in customer_ids {
            if !out.contains_key(*id) {
                let book = self
                    .load_live(&[(*id).to_string()], NaiveDate::MAX, false)
                    .await?;
                out.insert((*id).to_string(), book);
            }
        }
        Ok(out)
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

    async fn customers(
        &self,
        customer_ids: &[&str],
    ) -> Result<HashMap<String, Customer>, LedgerError> {
        let mut pks: Vec<String> = customer_ids.iter().map(|c| keys::customer_pk(c)).collect();
        pks.sort_unstable();
        pks.dedup();
        let mut out = HashMap::with_capacity(pks.len());
        for it in self.get_items(&pks, keys::CUSTOMER_SK, "customer").await? {
            let c: Customer = decode(&it)?;
            out.insert(c.customer_id.clone(), c);
        }
        Ok(out)
    }

    async fn open_work(&self, queue: Option<&str>) -> Result<Vec<WorkEntry>, LedgerError> {
        Ok(Dynamo::open_work(self, queue).await?)
    }

    async fn customer_action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionRecord>, LedgerError> {
        Ok(Dynamo::action(self, customer_id, action_id).await?)
    }

    async fn record_events(
        &self,
        customer_id: &str,
        events: &[Event],
    ) -> Result<Vec<bool>, LedgerError> {
        Ok(self.put_customer_events(customer_id, events).await?)
    }

    async fn note_action(
        &self,
        action: &ActionRecord,
        expected: ActionStatus,
        note: &TrailNote,
        day: NaiveDate,
    ) -> Result<bool, LedgerError> {
        Ok(Dynamo::note_action(self, action, expected, note, day).await?)
    }

    async fn trail(&self, action: &ActionRecord) -> Result<Vec<LogEntry>, LedgerError> {
        Ok(self
            .action_trail(&action.customer_id, &action.invoice_id, &action.action_id)
            .await?)
    }

    async fn put_message(&self, m: &StoredMessage) -> Result<bool, LedgerError> {
        Ok(self
            .put_if(
                self.message_item(m)?,
                // A `failed` one (earlier releases) is planned again too.
                "attribute_not_exists(#pk) OR #status IN (:cancelled, :failed)",
                &[("#pk", PK), ("#status", STATUS)],
                &[
                    (":cancelled", s(MessageStatus::Cancelled.as_str())),
                    (":failed", s(MessageStatus::Failed.as_str())),
                ],
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
            out.extend(in_order(tasks, chunk.len(), "PutItem").await?);
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
            out.extend(in_order(tasks, chunk.len(), "UpdateItem").await?);
        }
        Ok(out)
    }

    /// The messages taken (to `sending`) first, in transactions of
    /// [`FENCED_MESSAGES`] with the lease's `ConditionCheck`, one after
    /// another (two transactions on one item at once would conflict); then
    /// their actions. The other moves (cancellations, reconciliations)
    /// follow as in [`move_batch`](Ledger::move_batch), once the lease was
    /// found held. When the lease is lost part way, the messages already
    /// taken stay `sending` with their actions behind, as after a crash:
    /// the next run checks them again.
    async fn move_batch_fenced(
        &self,
        fence: &Fence,
        moves: &[Move],
    ) -> Result<Fenced<Vec<Option<Vec<bool>>>>, LedgerError> {
        let mut takes: Vec<(usize, &Move)> = Vec::new();
        let mut others: Vec<(usize, &Move)> = Vec::new();
        for (k, mv) in moves.iter().enumerate() {
            if mv.next.status == MessageStatus::Sending {
                takes.push((k, mv));
            } else {
                others.push((k, mv));
            }
        }
        let mut out: Vec<Option<Vec<bool>>> = vec![None; moves.len()];
        if takes.is_empty() && !self.fence_holds(fence).await? {
            return Ok(Fenced::LeaseLost);
        }
        let mut taken: Vec<(usize, &Move)> = Vec::with_capacity(takes.len());
        for chunk in takes.chunks(FENCED_MESSAGES) {
            let mvs: Vec<&Move> = chunk.iter().map(|(_, mv)| *mv).collect();
            match self.put_messages_fenced(fence, &mvs).await? {
                Fenced::LeaseLost => return Ok(Fenced::LeaseLost),
                Fenced::Written(written) => {
                    taken.extend(
                        chunk
                            .iter()
                            .zip(written)
                            .filter(|(_, w)| *w)
                            .map(|(t, _)| *t),
                    );
                }
            }
        }
        let mvs: Vec<&Move> = taken.iter().map(|(_, mv)| *mv).collect();
        for ((k, _), moved) in taken.iter().zip(self.move_actions_of(&mvs).await?) {
            if let Some(slot) = out.get_mut(*k) {
                *slot = Some(moved);
            }
        }
        let rest: Vec<Move> = others.iter().map(|(_, mv)| (*mv).clone()).collect();
        for ((k, _), moved) in others.iter().zip(self.move_batch(&rest).await?) {
            if let Some(slot) = out.get_mut(*k) {
                *slot = moved;
            }
        }
        Ok(Fenced::Written(out))
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

    /// Reads the lease, decides with [`lease_decision`] (the same rule as
    /// every adapter, the token included), and writes the decision on the
    /// condition that the lease is still as read; read again when another
    /// run wrote it in between.
    async fn take_lease(
        &self,
        name: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<LeaseOutcome, LedgerError> {
        let pk = keys::lease_pk(name);
        for _ in 0..3 {
            let current = self.get(pk.clone(), keys::LEASE_SK).await?;
            let stored = current.as_ref().map(Dynamo::lease_of).transpose()?;
            let outcome = lease_decision(stored.as_ref(), name, holder, now, ttl);
            let LeaseOutcome::Taken(lease) = &outcome else {
                return Ok(outcome);
            };
            let it = Dynamo::lease_item(lease)?;
            let taken = match current.as_ref().and_then(|c| get_s(c, DOC)) {
                None => {
                    self.put_if(it, "attribute_not_exists(#pk)", &[("#pk", PK)], &[])
                        .await?
                }
                Some(doc) => {
                    self.put_if(it, "#doc = :doc", &[("#doc", DOC)], &[(":doc", s(doc))])
                        .await?
                }
            };
            if taken {
                return Ok(outcome);
            }
        }
        Err(AwsError::LeaseRace {
            name: name.to_string(),
        }
        .into())
    }

    /// Kept, expired ([`Lease::released`]), with its token: only if
    /// `holder` still holds it.
    async fn release_lease(&self, name: &str, holder: &LeaseHolder) -> Result<(), LedgerError> {
        let Some(it) = self.get(keys::lease_pk(name), keys::LEASE_SK).await? else {
            return Ok(());
        };
        let lease = Dynamo::lease_of(&it)?;
        if lease.holder.id != holder.id {
            return Ok(());
        }
        self.put_if(
            Dynamo::lease_item(&lease.released())?,
            "#holder = :me",
            &[("#holder", HOLDER)],
            &[(":me", s(holder.id.clone()))],
        )
        .await?;
        Ok(())
    }
}

/// The answers of a chunk's concurrent writes, each task answering with its
/// index in the chunk, put back in the chunk's order (a write that did not
/// answer leaves the default: not written).
async fn in_order<T: Clone + Default + 'static, E: From<AwsError> + 'static>(
    mut tasks: tokio::task::JoinSet<(usize, Result<T, E>)>,
    n: usize,
    operation: &'static str,
) -> Result<Vec<T>, E> {
    let mut out = vec![T::default(); n];
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.map_err(|e| AwsError::Task {
            operation,
            source: e,
        })?;
        if let Some(slot) = out.get_mut(i) {
            *slot = result?;
        }
    }
    Ok(out)
}
