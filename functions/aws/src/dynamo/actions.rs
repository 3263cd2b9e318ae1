//! The sweep's action records: written on conditions (a new action only if
//! no item has its id, a changed one only if its status is still the one
//! the sweep saw), each write appending its line to the action's audit
//! trail in the same request.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::NaiveDate;

use super::Dynamo;
use super::codec::{decode, encode, get_s, read_trail_line, s, trail_line};
use crate::error::{AwsError, Service};
use crate::keys::{self, DOC, GSI1PK, GSI1SK, KIND, PK, SK, STATUS, TRAIL};
use collect_delivery::ledger::{LogEntry, Recorded};
use collect_engine::domain::{ActionId, ActionRecord, ActionStatus};

/// How many conditional action writes are in flight at once.
const PARALLEL_WRITES: usize = 16;

impl Dynamo {
    /// Records a sweep's actions. A new action is written only if no item
    /// has its id; a changed one only if its stored status is still the
    /// one the sweep saw (`previous`). Refused writes are conflicts: another
    /// run got there first, and this run must not act on them. Each write
    /// adds the line of `day` to the action's trail.
    ///
    /// Each write is its own conditional UpdateItem (DynamoDB has no batch
    /// of conditional writes short of a transaction, which costs twice), up
    /// to `PARALLEL_WRITES` (16) at a time; the answer keeps the order of
    /// `records`. An error stops the recording: what was written stays
    /// written, and the next run sees it as recorded (as after a crash).
    pub async fn record_actions(
        &self,
        records: &[ActionRecord],
        previous: &HashMap<ActionId, ActionStatus>,
        day: NaiveDate,
    ) -> Result<Recorded, AwsError> {
        let mut out = Recorded::default();
        for chunk in records.chunks(PARALLEL_WRITES) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, r) in chunk.iter().enumerate() {
                let me = self.clone();
                let r = r.clone();
                let expected: Vec<ActionStatus> =
                    previous.get(&r.action_id).copied().into_iter().collect();
                tasks.spawn(async move { (i, me.put_action(&r, &expected, day).await) });
            }
            let mut written = vec![false; chunk.len()];
            while let Some(joined) = tasks.join_next().await {
                let (i, result) = joined.map_err(|source| AwsError::Task {
                    operation: "UpdateItem",
                    source,
                })?;
                if let Some(slot) = written.get_mut(i) {
                    *slot = result?;
                }
            }
            for (r, ok) in chunk.iter().zip(written) {
                if ok {
                    out.written.push(r.action_id.clone());
                } else {
                    out.conflicts.push(r.action_id.clone());
                }
            }
        }
        Ok(out)
    }

    /// Writes an action if its stored status is one of `expected` (or, with
    /// none, if it does not exist). `Ok(false)` when the condition fails.
    ///
    /// The same UpdateItem appends the change to the action's audit trail
    /// (the item's `trail` list: day, status, note, by, risk — what
    /// SQLite's `action_log` keeps), so the trail costs no request of its
    /// own and is never out of step with the record. A record written again
    /// unchanged (a rerun of a day) is answered as written and adds no line:
    /// the condition refuses it and returns the stored item, whose document
    /// is the same.
    ///
    /// Size: DynamoDB items are limited to 400 KB. A line is about 100–300
    /// bytes (the note is the longest part) and an action changes a few
    /// times in its life (planned, sending, sent; a deferral a day while a
    /// cap holds), so a trail stays far below the limit: a thousand lines
    /// would still be under a third of it.
    pub async fn put_action(
        &self,
        r: &ActionRecord,
        expected: &[ActionStatus],
        day: NaiveDate,
    ) -> Result<bool, AwsError> {
        let doc = encode(r)?;
        // Open work (awaiting approval, a planned call) is in the desk's
        // index; anything else leaves it (see `super::work`).
        let work = self.work_entry(r).await?;
        let index = match &work {
            Some(_) => ", #gpk = :gpk, #gsk = :gsk",
            None => " REMOVE #gpk, #gsk",
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(&r.customer_id)))
            .key(SK, s(keys::action_sk(&r.action_id)))
            .update_expression(format!(
                "SET #kind = :kind, #doc = :doc, #status = :status, \
                 #trail = list_append(if_not_exists(#trail, :empty), :line){index}"
            ))
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_names("#gsk", GSI1SK)
            .expression_attribute_names("#kind", KIND)
            .expression_attribute_names("#doc", DOC)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#trail", TRAIL)
            .expression_attribute_values(":kind", s("action"))
            .expression_attribute_values(":doc", s(doc.clone()))
            .expression_attribute_values(":status", s(r.status.as_str()))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":line", AttributeValue::L(vec![trail_line(r, day)]));
        if let Some(w) = &work {
            update = update
                .expression_attribute_values(
                    ":gpk",
                    s(super::work::work_gsi_pk(keys::work_partition(
                        &r.customer_id,
                        self.shards,
                    ))),
                )
                .expression_attribute_values(":gsk", s(super::work::work_sk(w)?));
        }
        if expected.is_empty() {
            update = update
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK);
        } else {
            let names: Vec<String> = (0..expected.len()).map(|i| format!(":s{i}")).collect();
            update = update
                .condition_expression(format!(
                    "#status IN ({}) AND #doc <> :doc",
                    names.join(", ")
                ))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            for (name, st) in names.iter().zip(expected) {
                update = update.expression_attribute_values(name, s(st.as_str()));
            }
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    // Refused: written already as it is (answered as
                    // written, no new line), or another run moved it.
                    let stored = refused.item();
                    let unchanged = stored.is_some_and(|it| {
                        get_s(it, DOC) == Some(doc.as_str())
                            && get_s(it, STATUS)
                                .is_some_and(|st| expected.iter().any(|x| x.as_str() == st))
                    });
                    Ok(unchanged)
                }
                _ => Err(AwsError::sdk(Service::DynamoDb, "UpdateItem", e)),
            },
        }
    }

    /// An action's audit trail, oldest first (empty when the action is not
    /// known): one consistent GetItem of the trail attribute only, and one
    /// more of the folded copy when the action's invoice was folded.
    pub async fn action_trail(
        &self,
        customer_id: &str,
        invoice_id: &str,
        action_id: &str,
    ) -> Result<Vec<LogEntry>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::action_sk(action_id)))
            .projection_expression("#trail")
            .expression_attribute_names("#trail", TRAIL)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        let item = match out.item {
            Some(it) => Some(it),
            None => {
                self.folded_item(customer_id, invoice_id, &keys::action_sk(action_id))
                    .await?
            }
        };
        let lines = match item.as_ref().and_then(|it| it.get(TRAIL)) {
            Some(AttributeValue::L(lines)) => lines.as_slice(),
            _ => &[],
        };
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| read_trail_line(action_id, i, line))
            .collect()
    }

    /// An action by its customer and id, live or folded.
    pub async fn action(
        &self,
        customer_id: &str,
        action_id: &str,
    ) -> Result<Option<ActionRecord>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(keys::customer_pk(customer_id)))
            .key(SK, s(keys::action_sk(action_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::DynamoDb, "GetItem", e))?;
        match out.item {
            Some(it) => Ok(Some(decode(&it)?)),
            None => self
                .folded_action(customer_id, action_id)
                .await?
                .as_ref()
                .map(decode)
                .transpose(),
        }
    }
}
