//! Incoming events on AWS: the ERP's JSON events (the data contract's
//! fields, through EventBridge or SQS), SES's events (through SNS or
//! EventBridge) and CSV exports dropped in S3 (split into chunks that come
//! back through the events queue: [`super::drops`], `drop_ingest`).
//!
//! Every event is either applied or refused with a reason: a refused event
//! becomes a [`DeadLetter`] (reason, source, the event as received) for the
//! dead-letter queue, never silently dropped, while the valid events of the
//! same batch still apply. Only failures of AWS itself (throttling, an
//! outage) are errors, so that the event is delivered again.

use serde::Serialize;
use serde_json::Value;

use super::drops::{CHUNK_FORMAT, ChunkSettings, DropChunk};
use super::dynamo::{Dynamo, MailEvent, Merged};
use super::error::AwsError;
use super::queue::{DeadLetter, Queue};
use super::ses;
use collect_delivery::delivery::holds::{MailHoldEvent, hold_from_mail_event};
use collect_engine::domain::Event;
use collect_engine::ingest::{self, Incoming};

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Applied {
    /// A customer, invoice or payment upserted.
    Record {
        kind: &'static str,
        id: String,
    },
    /// An invoice event; `new` is false for a re-delivery.
    Event {
        event_id: String,
        new: bool,
    },
    /// A mail event, with the actions it was matched to.
    Mail {
        event_id: String,
        new: bool,
        message_id: Option<String>,
        actions: Vec<String>,
    },
    /// A customer's address held (a permanent bounce, a complaint); `new`
    /// is false when it was held already.
    ContactHold {
        customer_id: String,
        new: bool,
    },
    /// A file from S3 refused as a whole (or by its name).
    File {
        key: String,
        applied: usize,
        rejected: usize,
    },
    /// A CSV or JSONL file from S3 split into chunks, each sent to the
    /// events queue ([`super::drops`]).
    Split {
        key: String,
        /// The drop's id (`<bucket>/<key>@<version>`): its item says how
        /// far it got.
        drop: String,
        chunks: u32,
    },
    /// One chunk of a drop applied; `drop_done` when it completed the
    /// drop (reported once per drop).
    Chunk {
        key: String,
        chunk: u32,
        chunks: u32,
        applied: usize,
        rejected: usize,
        drop_done: bool,
    },
    Rejected {
        reason: String,
    },
}

/// The events function's work, independent of how Lambda delivers it.
#[derive(Debug, Clone)]
pub struct EventsService {
    pub dynamo: Dynamo,
    pub dead_letters: Queue,
    /// Where a redrive puts the dead letters back (`EVENTS_QUEUE_URL`).
    pub events_queue: Option<Queue>,
    pub s3: aws_sdk_s3::Client,
    /// How big the chunks of a CSV drop are (`DROP_CHUNK_BYTES`,
    /// `DROP_CHUNK_ROWS`).
    pub chunks: ChunkSettings,
}

/// The outcome of a batch: what applied and what was refused.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Batch {
    pub applied: Vec<Applied>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Batch {
    pub fn reject(&mut self, reason: String, source: &str, event: Value) {
        tracing::warn!(source, reason = %reason, "event refused to the dead-letter queue");
        self.applied.push(Applied::Rejected {
            reason: reason.clone(),
        });
        // The edge of the system: when the event was given up.
        self.dead_letters.push(DeadLetter::refused(
            reason,
            source,
            event,
            chrono::Utc::now(),
        ));
    }
}

/// Why an event that was read could not be applied (its dead letter's
/// reason): it names a record that does not exist, or it is a payment its
/// invoice cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "field `customer_id`: no customer `{customer_id}`; send its customer_upserted event first"
    )]
    NoCustomer { customer_id: String },
    #[error("field `invoice_id`: no invoice `{invoice_id}`; send its invoice_upserted event first")]
    NoInvoiceForPayment { invoice_id: String },
    #[error("field `invoice_id`: no invoice `{invoice_id}`")]
    NoInvoiceForEvent { invoice_id: String },
    /// Every check of the payment against its invoice that failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Payment(Vec<ingest::Refusal>),
}

impl EventsService {
    /// Moves up to `max` dead letters back to the events queue
    /// (`EVENTS_QUEUE_URL`): see [`super::dead_letter::redrive`].
    pub async fn redrive(&self, max: usize) -> Result<super::dead_letter::Redriven, AwsError> {
        let Some(to) = &self.events_queue else {
            return Err(super::error::ConfigError::not_set("EVENTS_QUEUE_URL").into());
        };
        super::dead_letter::redrive(&self.dead_letters, to, max, 300).await
    }

    /// Sends the batch's dead letters to the dead-letter queue.
    pub async fn flush(&self, batch: &mut Batch) -> Result<(), AwsError> {
        if !batch.dead_letters.is_empty() {
            self.dead_letters.send_all(&batch.dead_letters).await?;
            batch.dead_letters.clear();
        }
        Ok(())
    }

    /// One JSON event of any supported shape: an ERP event, an SES event,
    /// an EventBridge envelope of either, an SNS notification (an SNS
    /// subscription delivering to SQS without raw delivery), or an S3
    /// object-created notification.
    pub async fn apply_json(
        &self,
        v: &Value,
        source: &str,
        batch: &mut Batch,
    ) -> Result<(), AwsError> {
        // A chunk of a CSV drop (split by `ingest_object`).
        if v.get("format").and_then(Value::as_str) == Some(CHUNK_FORMAT) {
            return match serde_json::from_value::<DropChunk>(v.clone()) {
                Ok(chunk) => self.ingest_chunk(&chunk, batch).await,
                Err(e) => {
                    batch.reject(
                        format!("a drop chunk that cannot be read: {e}"),
                        source,
                        v.clone(),
                    );
                    Ok(())
                }
            };
        }
        // SNS envelope.
        if v.get("Type").and_then(Value::as_str) == Some("Notification") {
            if let Some(text) = v.get("Message").and_then(Value::as_str) {
                return match serde_json::from_str::<Value>(text) {
                    Ok(inner) => Box::pin(self.apply_json(&inner, source, batch)).await,
                    Err(e) => {
                        batch.reject(
                            format!("the SNS message is not JSON: {e}"),
                            source,
                            v.clone(),
                        );
                        Ok(())
                    }
                };
            }
        }
        // Lambda's SNS event (SES events through SNS): each record's `Sns`
        // is an SNS envelope.
        if let Some(records) = v.get("Records").and_then(Value::as_array) {
            let envelopes: Vec<&Value> = records.iter().filter_map(|r| r.get("Sns")).collect();
            if !envelopes.is_empty() {
                for envelope in envelopes {
                    let id = envelope
                        .get("MessageId")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Box::pin(self.apply_json(envelope, &format!("sns:{id}"), batch)).await?;
                }
                return Ok(());
            }
        }
        // S3 notification (S3 → SQS, or Lambda's S3 event).
        if let Some(records) = v.get("Records").and_then(Value::as_array) {
            let objects: Vec<(String, String, Option<String>)> =
                records.iter().filter_map(s3_object).collect();
            if !objects.is_empty() {
                for (bucket, key, version) in objects {
                    self.ingest_object(&bucket, &key, version.as_deref(), batch)
                        .await?;
                }
                return Ok(());
            }
        }
        // EventBridge envelope.
        if let (Some(detail_type), Some(detail)) = (
            v.get("detail-type").and_then(Value::as_str),
            v.get("detail"),
        ) {
            let source_name = v.get("source").and_then(Value::as_str).unwrap_or_default();
            let src = format!(
                "eventbridge:{}",
                v.get("id").and_then(Value::as_str).unwrap_or(source)
            );
            if source_name == "aws.s3" && detail_type == "Object Created" {
                let bucket = detail.pointer("/bucket/name").and_then(Value::as_str);
                let key = detail.pointer("/object/key").and_then(Value::as_str);
                let version = detail.pointer("/object/version-id").and_then(Value::as_str);
                return match (bucket, key) {
                    (Some(b), Some(k)) => self.ingest_object(b, k, version, batch).await,
                    _ => {
                        batch.reject(
                            "an S3 `Object Created` event needs `detail.bucket.name` and `detail.object.key`".into(),
                            &src,
                            v.clone(),
                        );
                        Ok(())
                    }
                };
            }
            if source_name == "aws.ses" || ses::is_ses_event(detail) {
                return self.apply_ses(detail, &src, batch).await;
            }
            // An ERP event; its type may be given as the detail-type.
            let mut detail = detail.clone();
            if let Value::Object(map) = &mut detail {
                if !map.contains_key("type") {
                    map.insert("type".into(), Value::from(detail_type));
                }
            }
            return self.apply_erp(&detail, &src, batch).await;
        }
        if ses::is_ses_event(v) {
            return self.apply_ses(v, source, batch).await;
        }
        self.apply_erp(v, source, batch).await
    }

    async fn apply_ses(&self, v: &Value, source: &str, batch: &mut Batch) -> Result<(), AwsError> {
        match ses::ses_event(v) {
            Ok(e) => {
                let applied = self.store_mail(&e.stored).await?;
                batch.applied.push(applied);
                for hold in ses::ses_holds(v, &e) {
                    self.hold(&hold, batch).await?;
                }
            }
            Err(refused) => batch.reject(refused.to_string(), source, v.clone()),
        }
        Ok(())
    }

    /// Stores a mail event and finds the actions it answers.
    async fn store_mail(&self, e: &MailEvent) -> Result<Applied, AwsError> {
        let new = self.dynamo.put_mail_event(e).await?;
        let mut actions = Vec::new();
        if let Some(mid) = &e.message_id {
            if let Some(m) = self.dynamo.stored_message(mid).await? {
                actions = m.action_ids.into_iter().map(String::from).collect();
            }
        }
        if actions.is_empty() {
            actions.extend(e.action_id.clone());
        }
        tracing::info!(
            event_id = %e.event_id,
            kind = %e.kind,
            message_id = e.message_id.as_deref().unwrap_or(""),
            actions = actions.len(),
            new,
            "mail event"
        );
        Ok(Applied::Mail {
            event_id: e.event_id.clone(),
            new,
            message_id: e.message_id.clone(),
            actions,
        })
    }

    /// Holds the address a permanent bounce or a complaint is about (once:
    /// a replayed event finds the hold kept).
    async fn hold(&self, e: &MailHoldEvent, batch: &mut Batch) -> Result<(), AwsError> {
        let held = hold_from_mail_event(&self.dynamo, e)
            .await
            .map_err(AwsError::from)?;
        if let Some((hold, new)) = held {
            tracing::info!(
                customer_id = %hold.customer_id,
                source = %hold.source,
                new,
                "contact held"
            );
            batch.applied.push(Applied::ContactHold {
                customer_id: hold.customer_id.to_string(),
                new,
            });
        }
        Ok(())
    }

    async fn customer_exists(&self, customer_id: &str) -> Result<bool, AwsError> {
        let book = self.dynamo.load_book(&[customer_id.to_string()]).await?;
        Ok(book.customers.contains_key(customer_id))
    }

    /// An ERP event in the data contract's JSON.
    pub async fn apply_erp(
        &self,
        v: &Value,
        source: &str,
        batch: &mut Batch,
    ) -> Result<(), AwsError> {
        match ingest::incoming_from_json(v) {
            Err(refused) => batch.reject(refused.to_string(), source, v.clone()),
            Ok(incoming) => {
                if let Some(refused) = self.apply_incoming(incoming, batch).await? {
                    batch.reject(refused.to_string(), source, v.clone());
                }
            }
        }
        Ok(())
    }

    /// Applies a parsed event; `Ok(Some(why))` when it must be refused (it
    /// names something that does not exist, or a payment its invoice
    /// cannot take).
    pub(crate) async fn apply_incoming(
        &self,
        incoming: Incoming,
        batch: &mut Batch,
    ) -> Result<Option<Refused>, AwsError> {
        match incoming {
            Incoming::Customer(c) => {
                // Fields the event leaves out keep their stored value.
                if self.dynamo.merge_customer(&c).await? == Merged::Older {
                    tracing::info!(
                        customer_id = %c.record.customer_id,
                        "customer record older (updated_at) than the stored one: not written"
                    );
                }
                batch.applied.push(Applied::Record {
                    kind: "customer",
                    id: c.record.customer_id,
                });
            }
            Incoming::Invoice(i) => {
                if !self.customer_exists(&i.record.customer_id).await? {
                    return Ok(Some(Refused::NoCustomer {
                        customer_id: i.record.customer_id,
                    }));
                }
                if self.dynamo.merge_invoice(&i).await? == Merged::Older {
                    tracing::info!(
                        invoice_id = %i.record.invoice_id,
                        "invoice record older (updated_at) than the stored one: not written"
                    );
                }
                batch.applied.push(Applied::Record {
                    kind: "invoice",
                    id: i.record.invoice_id,
                });
            }
            Incoming::Payment(p) => {
                let Some(invoice) = self.dynamo.invoice(&p.invoice_id).await? else {
                    return Ok(Some(Refused::NoInvoiceForPayment {
                        invoice_id: p.invoice_id,
                    }));
                };
                let refusals = ingest::check_payment(&p, &invoice);
                if !refusals.is_empty() {
                    return Ok(Some(Refused::Payment(refusals)));
                }
                if !self.dynamo.put_payment(&p).await? {
                    return Ok(Some(Refused::NoInvoiceForPayment {
                        invoice_id: p.invoice_id,
                    }));
                }
                batch.applied.push(Applied::Record {
                    kind: "payment",
                    id: p.payment_id,
                });
            }
            Incoming::Event(e) if e.kind.is_mail() => {
                let applied = self.store_mail(&mail_event(&e)).await?;
                batch.applied.push(applied);
                if let Some(hold) = MailHoldEvent::of_event(&e, "erp") {
                    self.hold(&hold, batch).await?;
                }
            }
            Incoming::Event(e) => {
                self.warn_of_dispute_closed(&e).await?;
                return self.put_invoice_event(e, batch).await;
            }
        }
        Ok(None)
    }

    /// A `dispute_closed` that closes no open dispute of its invoice is
    /// stored, with a warning in the log ([`ingest::check_dispute_closed`],
    /// the rule `collect ingest` prints).
    async fn warn_of_dispute_closed(&self, e: &Event) -> Result<(), AwsError> {
        if e.kind != collect_engine::domain::EventKind::DisputeClosed {
            return Ok(());
        }
        let Some(invoice) = (match &e.invoice_id {
            Some(id) => self.dynamo.invoice(id).await?,
            None => None,
        }) else {
            return Ok(());
        };
        let stored = self
            .dynamo
            .invoice_events(&invoice.customer_id, &invoice.invoice_id)
            .await?;
        let earlier: Vec<&Event> = stored.iter().collect();
        if let Some(reason) = ingest::check_dispute_closed(&invoice, &earlier, e) {
            tracing::warn!(event_id = %e.event_id, invoice_id = %invoice.invoice_id, reason = %reason, "dispute_closed without an open dispute");
        }
        Ok(())
    }

    /// Stores an invoice event; `Some(why)` when its invoice is not known.
    async fn put_invoice_event(
        &self,
        e: Event,
        batch: &mut Batch,
    ) -> Result<Option<Refused>, AwsError> {
        match self.dynamo.put_invoice_event(&e).await? {
            None => {
                return Ok(Some(Refused::NoInvoiceForEvent {
                    invoice_id: e.invoice_id.unwrap_or_default(),
                }));
            }
            Some(new) => batch.applied.push(Applied::Event {
                event_id: e.event_id,
                new,
            }),
        }
        Ok(None)
    }
}

/// `(bucket, key, version id)` of an S3 event record (keys arrive
/// URL-encoded).
fn s3_object(record: &Value) -> Option<(String, String, Option<String>)> {
    let s3 = record.get("s3")?;
    let bucket = s3.pointer("/bucket/name")?.as_str()?;
    let key = s3.pointer("/object/key")?.as_str()?;
    let version = s3
        .pointer("/object/versionId")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((bucket.to_string(), url_decode(key), version))
}

/// S3 event keys are form-encoded (`+` for space, `%xx`).
pub fn url_decode(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An ERP mail event (`mail_replied`, …) as stored.
fn mail_event(e: &Event) -> MailEvent {
    MailEvent {
        event_id: e.event_id.clone(),
        kind: e.kind.name().to_string(),
        date: e.date,
        message_id: e.message_id.clone(),
        action_id: e.action_id.clone(),
        provider_message_id: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_decoded() {
        assert_eq!(
            url_decode("drops/invoices+2026%2D03.csv"),
            "drops/invoices 2026-03.csv"
        );
        assert_eq!(url_decode("a%zz"), "a%zz");
    }
}
