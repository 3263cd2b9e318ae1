//! The events function's side of CSV drops ([`super::drops`]): the split
//! of a dropped object into chunk messages, and the ingest of one chunk.
//!
//! A chunk is applied with the rules the whole file had: the engine's
//! reader, the partial-update and `updated_at` rules of the DynamoDB
//! merges (in batches: [`crate::dynamo::Dynamo::merge_invoice_batch`] and
//! its siblings), an invoice refused when its customer is not stored, a
//! payment checked against its invoice. Every refused row is a dead letter
//! naming the file's real line (as before), and the chunk's refused rows
//! are also written to `rejects/<key>/<version>/<chunk>.csv` in the bucket,
//! in the columns of `collect ingest`'s `rejects.csv`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde_json::Value;

use super::drops::{
    CHUNK_FORMAT, DROP_SK, DropChunk, Duplicate, Format, Scanner, drop_id, drop_pk, rejects_key,
};
use super::dynamo::{conditional_failed, n, s};
use super::error::{AwsError, ConfigError, Service, ServiceError};
use super::events::{Applied, Batch, EventsService};
use super::keys::{self, KIND, PK, SK};
use collect_engine::domain::Invoice;
use collect_engine::ingest::{self, IngestError, Parsed, Patch, Reject};

/// The longest header line read before the file is refused.
const MAX_HEADER: usize = 1024 * 1024;
/// Days a drop item is kept (the table's TTL).
const DROP_ITEM_DAYS: i64 = 35;

/// Which export a dropped file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Customers,
    Invoices,
    Payments,
    Events,
}

impl Export {
    /// `customers*.csv`, `invoices*.csv`, `payments*.csv`, `events*.jsonl`
    /// (the file name, any case).
    pub fn of_key(key: &str) -> Option<Export> {
        let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
        if name.ends_with(".csv") && name.starts_with("customers") {
            Some(Export::Customers)
        } else if name.ends_with(".csv") && name.starts_with("invoices") {
            Some(Export::Invoices)
        } else if name.ends_with(".csv") && name.starts_with("payments") {
            Some(Export::Payments)
        } else if name.ends_with(".jsonl") && name.starts_with("events") {
            Some(Export::Events)
        } else {
            None
        }
    }

    /// The column every row's id is in (unique within a file).
    fn id_column(self) -> &'static str {
        match self {
            Export::Customers => "customer_id",
            Export::Invoices => "invoice_id",
            Export::Payments => "payment_id",
            Export::Events => "",
        }
    }

    fn format(self) -> Format {
        match self {
            Export::Events => Format::Jsonl,
            _ => Format::Csv,
        }
    }

    /// Checks a header as the engine's reader does (no rows).
    fn check_header(self, header: &[u8], file: &str) -> Result<(), IngestError> {
        match self {
            Export::Customers => ingest::customers(header, file).map(drop),
            Export::Invoices => ingest::invoices(header, file).map(drop),
            Export::Payments => ingest::payments(header, file).map(drop),
            Export::Events => Ok(()),
        }
    }
}

/// Adds `shift` to every line a chunk's parse reported.
/// A chunk's parsed rows made ready to write: numbered by their lines in
/// the whole file, the duplicates of rows in other chunks refused, and the
/// rows' own rejects recorded.
fn ready<T>(
    p: &mut Parsed<T>,
    c: &DropChunk,
    source: &str,
    id_column: &str,
    refused: &mut Refusals<'_>,
    batch: &mut Batch,
) {
    shift_lines(p, c.line_shift());
    refuse_duplicates(p, &c.duplicates, source, id_column);
    for r in std::mem::take(&mut p.rejects) {
        refused.value(batch, r);
    }
}

fn shift_lines<T>(p: &mut Parsed<T>, shift: u64) {
    for r in &mut p.rejects {
        r.line = r.line.saturating_add(shift);
    }
    for l in &mut p.lines {
        *l = l.saturating_add(shift);
    }
}

/// Takes the rows an earlier chunk's row has the id of out of a chunk's
/// parse, refused as the engine's reader refuses a duplicate.
fn refuse_duplicates<T>(p: &mut Parsed<T>, duplicates: &[Duplicate], file: &str, id_column: &str) {
    if duplicates.is_empty() {
        return;
    }
    let lines: HashMap<u64, &Duplicate> = duplicates.iter().map(|d| (d.line, d)).collect();
    let records = std::mem::take(&mut p.records);
    let at = std::mem::take(&mut p.lines);
    for (record, line) in records.into_iter().zip(at) {
        if !lines.contains_key(&line) {
            p.records.push(record);
            p.lines.push(line);
        }
    }
    p.rejects.extend(
        duplicates
            .iter()
            .map(|d| ingest::duplicate(file, d.line, id_column, &d.id, d.first)),
    );
}

/// A chunk's refusals: dead letters (as one file was) and the rows of its
/// rejects file.
struct Refusals<'a> {
    source: &'a str,
    rejects: Vec<Reject>,
}

impl Refusals<'_> {
    /// A refused row; `event` is what its dead letter carries.
    fn row(&mut self, batch: &mut Batch, r: Reject, event: Value) {
        batch.reject(r.to_string(), &format!("{}:{}", self.source, r.line), event);
        self.rejects.push(r);
    }

    /// A value refused by the engine's reader.
    fn value(&mut self, batch: &mut Batch, r: Reject) {
        let event = serde_json::json!({"column": r.column, "value": r.value});
        self.row(batch, r, event);
    }

    /// A chunk that could not be read as a whole (its lines from `r.line`).
    fn whole(&mut self, batch: &mut Batch, e: &IngestError, shift: u64) {
        let mut r = e.reject();
        r.line = r.line.saturating_add(shift);
        batch.reject(r.to_string(), self.source, Value::from(self.source));
        self.rejects.push(r);
    }
}

impl EventsService {
    /// A file dropped in S3 (`customers*.csv`, `invoices*.csv`,
    /// `payments*.csv`, `events*.jsonl`): checked, split into chunks, and
    /// each chunk sent to the events queue ([`super::drops`]). Nothing is
    /// ingested here. A file that cannot be read as a whole (not UTF-8, a
    /// header without the required columns) is refused as before, with
    /// the file and the line; a name that is no export is refused too.
    pub async fn ingest_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        batch: &mut Batch,
    ) -> Result<(), AwsError> {
        let source = format!("s3://{bucket}/{key}");
        let Some(export) = Export::of_key(key) else {
            let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
            batch.reject(
                format!(
                    "`{name}` is not a known export; name it customers*.csv, invoices*.csv, payments*.csv or events*.jsonl"
                ),
                &source,
                Value::from(source.clone()),
            );
            batch.applied.push(Applied::File {
                key: key.to_string(),
                applied: 0,
                rejected: 1,
            });
            return Ok(());
        };
        let Some(queue) = &self.events_queue else {
            return Err(ConfigError::not_set("EVENTS_QUEUE_URL").into());
        };
        let mut object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::S3, "GetObject", e))?;
        let version_id = object.version_id.clone();
        let etag = object.e_tag.clone();
        let scanner = Scanner::new(export.format(), self.chunks).with_ids(export.id_column());
        let scanned = scan(&mut object.body, scanner, &source).await?;
        let (ranges, header, scanner) = match scanned.and_then(|(ranges, header, scanner)| {
            export.check_header(&header, &source)?;
            Ok((ranges, header, scanner))
        }) {
            Ok(found) => found,
            Err(e) => {
                batch.reject(e.to_string(), &source, Value::from(source.clone()));
                batch.applied.push(Applied::File {
                    key: key.to_string(),
                    applied: 0,
                    rejected: 0,
                });
                return Ok(());
            }
        };
        let header = String::from_utf8_lossy(&header).into_owned();
        let total = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
        let (duplicates, full) = scanner.duplicates();
        if full {
            tracing::warn!(source = %source, ids = super::drops::MAX_TRACKED_IDS, "too many rows to find every duplicate id across chunks");
        }
        let mut chunks: Vec<DropChunk> = (0u32..)
            .zip(ranges)
            .map(|(chunk, (start, end, first_line))| DropChunk {
                format: CHUNK_FORMAT.to_string(),
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id: version_id.clone(),
                etag: etag.clone(),
                chunk,
                chunks: total,
                start,
                end,
                first_line,
                header: if start == 0 || export.format() == Format::Jsonl {
                    String::new()
                } else {
                    header.clone()
                },
                duplicates: Vec::new(),
            })
            .collect();
        // Each duplicate goes to the chunk its row is in, unless its first
        // row is in the same chunk (the engine's reader finds it there).
        for d in duplicates {
            let at = chunks.partition_point(|c| c.first_line <= d.line);
            if let Some(c) = at.checked_sub(1).and_then(|i| chunks.get_mut(i)) {
                if d.first < c.first_line {
                    c.duplicates.push(d.clone());
                }
            }
        }
        let drop = chunks
            .first()
            .map(DropChunk::drop_id)
            .unwrap_or_else(|| drop_id(bucket, key, ""));
        self.start_drop(&drop, bucket, key, total).await?;
        queue.send_all(&chunks).await?;
        tracing::info!(source = %source, drop = %drop, chunks = total, "drop split into chunks");
        batch.applied.push(Applied::Split {
            key: key.to_string(),
            drop,
            chunks: total,
        });
        Ok(())
    }

    /// The drop's item, unless a redelivered notification wrote it already.
    async fn start_drop(
        &self,
        drop: &str,
        bucket: &str,
        key: &str,
        total: u32,
    ) -> Result<(), AwsError> {
        let now = chrono::Utc::now();
        let expires = now.timestamp() + DROP_ITEM_DAYS * 86_400;
        let result = self
            .dynamo
            .client()
            .put_item()
            .table_name(self.dynamo.table())
            .item(PK, s(drop_pk(drop)))
            .item(SK, s(DROP_SK))
            .item(KIND, s("drop"))
            .item("bucket", s(bucket))
            .item("key", s(key))
            .item("chunks_total", n(i64::from(total)))
            .item("chunks", AttributeValue::M(HashMap::new()))
            .item("started_at", s(now.to_rfc3339()))
            .item(keys::TTL, n(expires))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "PutItem", e)),
        }
    }

    /// One chunk of a drop: read (a ranged GetObject of the version that
    /// was split), parsed, applied, its rejects written, and its place in
    /// the drop's item set.
    pub async fn ingest_chunk(&self, c: &DropChunk, batch: &mut Batch) -> Result<(), AwsError> {
        let source = format!("s3://{}/{}", c.bucket, c.key);
        let Some(export) = Export::of_key(&c.key) else {
            batch.reject(
                format!("{source}: a chunk of a file that is no export"),
                &source,
                Value::from(source.clone()),
            );
            return Ok(());
        };
        let mut text = c.header.clone().into_bytes();
        if let Some(range) = c.range() {
            let request = self
                .s3
                .get_object()
                .bucket(&c.bucket)
                .key(&c.key)
                .range(range)
                .set_version_id(c.version_id.clone());
            let request = match (&c.version_id, &c.etag) {
                (None, Some(etag)) => request.if_match(etag),
                _ => request,
            };
            let object = request
                .send()
                .await
                .map_err(|e| AwsError::sdk(Service::S3, "GetObject", e))?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| ServiceError::unreadable(source.clone(), e))?
                .into_bytes();
            text.extend_from_slice(&bytes);
        }
        let mut refused = Refusals {
            source: &source,
            rejects: Vec::new(),
        };
        let applied = self
            .apply_rows(export, &text, c, &mut refused, batch)
            .await?;
        let rejected = refused.rejects.len();
        if !refused.rejects.is_empty() {
            self.put_rejects(c, &refused.rejects).await?;
        }
        let done = self.chunk_done(c, applied, rejected).await?;
        tracing::info!(source = %source, chunk = c.chunk, chunks = c.chunks, applied, rejected, drop_done = done, "chunk ingested");
        batch.applied.push(Applied::Chunk {
            key: c.key.clone(),
            chunk: c.chunk,
            chunks: c.chunks,
            applied,
            rejected,
            drop_done: done,
        });
        Ok(())
    }

    /// Parses a chunk's text (`header + rows`) and applies its rows;
    /// returns how many were applied.
    async fn apply_rows(
        &self,
        export: Export,
        text: &[u8],
        c: &DropChunk,
        refused: &mut Refusals<'_>,
        batch: &mut Batch,
    ) -> Result<usize, AwsError> {
        let source = refused.source.to_string();
        let shift = c.line_shift();
        let id_column = export.id_column();
        match export {
            Export::Customers => match ingest::customers(text, &source) {
                Err(e) => refused.whole(batch, &e, shift),
                Ok(mut p) => {
                    ready(&mut p, c, &source, id_column, refused, batch);
                    // Columns the file lacks keep their stored values.
                    return Ok(self.dynamo.merge_customer_batch(&p.records).await?.records);
                }
            },
            Export::Invoices => match ingest::invoices(text, &source) {
                Err(e) => refused.whole(batch, &e, shift),
                Ok(mut p) => {
                    ready(&mut p, c, &source, id_column, refused, batch);
                    let ids: Vec<String> = p
                        .records
                        .iter()
                        .map(|i| i.record.customer_id.clone())
                        .collect();
                    let known = self.dynamo.known_customers(&ids).await?;
                    let mut kept: Vec<Patch<Invoice>> = Vec::with_capacity(p.records.len());
                    for (inv, line) in p.records.into_iter().zip(p.lines) {
                        let customer_id = &inv.record.customer_id;
                        if known.contains(customer_id) {
                            kept.push(inv);
                            continue;
                        }
                        refused.value(
                            batch,
                            Reject {
                                file: source.clone(),
                                line,
                                column: "customer_id".into(),
                                value: customer_id.clone(),
                                reason: format!(
                                    "no customer `{customer_id}`; add it to customers.csv"
                                ),
                            },
                        );
                    }
                    return Ok(self.dynamo.merge_invoice_batch(&kept).await?.records);
                }
            },
            Export::Payments => match ingest::payments(text, &source) {
                Err(e) => refused.whole(batch, &e, shift),
                Ok(mut p) => {
                    ready(&mut p, c, &source, id_column, refused, batch);
                    let ids: Vec<String> = p.records.iter().map(|r| r.invoice_id.clone()).collect();
                    // Each payment is checked against its invoice (read in
                    // batches); unknown invoices are refused below.
                    let invoices = self.dynamo.invoices_by_id(&ids).await?;
                    let mut lines: HashMap<String, u64> = HashMap::new();
                    let mut checked = Vec::with_capacity(p.records.len());
                    for (payment, line) in p.records.into_iter().zip(p.lines) {
                        let refusals = match invoices.get(&payment.invoice_id) {
                            Some(invoice) => ingest::check_payment(&payment, invoice),
                            None => Vec::new(),
                        };
                        if refusals.is_empty() {
                            lines.insert(payment.payment_id.clone(), line);
                            checked.push(payment);
                            continue;
                        }
                        for r in refusals {
                            refused.value(batch, r.at(&source, line));
                        }
                    }
                    let owners: HashMap<String, String> = invoices
                        .values()
                        .map(|i| (i.invoice_id.clone(), i.customer_id.clone()))
                        .collect();
                    let (mut written, unknown) =
                        self.dynamo.put_payment_batch(&checked, &owners).await?;
                    for u in unknown {
                        let line = lines.get(&u.payment_id).copied().unwrap_or(0);
                        // Not among the live invoices read in batches: the
                        // one-by-one path (checked, then written).
                        if let Some(invoice) = self.dynamo.invoice(&u.invoice_id).await? {
                            let refusals = ingest::check_payment(&u, &invoice);
                            if refusals.is_empty() && self.dynamo.put_payment(&u).await? {
                                written += 1;
                                continue;
                            }
                            if !refusals.is_empty() {
                                for r in refusals {
                                    refused.value(batch, r.at(&source, line));
                                }
                                continue;
                            }
                        }
                        refused.value(
                            batch,
                            Reject {
                                file: source.clone(),
                                line,
                                column: "invoice_id".into(),
                                value: u.invoice_id.clone(),
                                reason: format!(
                                    "no invoice `{}`; add it to invoices.csv",
                                    u.invoice_id
                                ),
                            },
                        );
                    }
                    return Ok(written);
                }
            },
            Export::Events => match ingest::events(text, &source) {
                Err(e) => refused.whole(batch, &e, shift),
                Ok(mut p) => {
                    ready(&mut p, c, &source, id_column, refused, batch);
                    // In file order: an event may need the record of an
                    // earlier line.
                    let mut applied = 0;
                    for (incoming, line) in p.records.into_iter().zip(p.lines) {
                        match self.apply_incoming(incoming, batch).await? {
                            Some(why) => refused.row(
                                batch,
                                Reject {
                                    file: source.clone(),
                                    line,
                                    column: String::new(),
                                    value: String::new(),
                                    reason: why.to_string(),
                                },
                                Value::Null,
                            ),
                            None => applied += 1,
                        }
                    }
                    return Ok(applied);
                }
            },
        }
        Ok(0)
    }

    /// Writes a chunk's rejects file (replacing the one of an earlier
    /// delivery of the same chunk).
    async fn put_rejects(&self, c: &DropChunk, rejects: &[Reject]) -> Result<(), AwsError> {
        let key = rejects_key(&c.key, c.version(), c.chunk);
        let body = rejects_csv(rejects);
        self.s3
            .put_object()
            .bucket(&c.bucket)
            .key(&key)
            .content_type("text/csv; charset=utf-8")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::sdk(Service::S3, "PutObject", e))?;
        Ok(())
    }

    /// Sets the chunk's entry in its drop's item; true when this call
    /// completed the drop (counted once, whichever chunk is last).
    async fn chunk_done(
        &self,
        c: &DropChunk,
        applied: usize,
        rejected: usize,
    ) -> Result<bool, AwsError> {
        let pk = drop_pk(&c.drop_id());
        let count = |v: usize| n(i64::try_from(v).unwrap_or(i64::MAX));
        let entry = AttributeValue::M(HashMap::from([
            ("applied".to_string(), count(applied)),
            ("rejected".to_string(), count(rejected)),
        ]));
        let out = self
            .dynamo
            .client()
            .update_item()
            .table_name(self.dynamo.table())
            .key(PK, s(pk.clone()))
            .key(SK, s(DROP_SK))
            .update_expression("SET #chunks.#n = :entry")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#chunks", "chunks")
            .expression_attribute_names("#n", c.chunk.to_string())
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":entry", entry)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match out {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                tracing::warn!(drop = %c.drop_id(), chunk = c.chunk, "a chunk of a drop without its item (expired?): progress not recorded");
                return Ok(false);
            }
            Err(e) => return Err(AwsError::sdk(Service::DynamoDb, "UpdateItem", e)),
        };
        let done = match item.get("chunks") {
            Some(AttributeValue::M(m)) => m.len(),
            _ => 0,
        };
        let total = match item.get("chunks_total") {
            Some(AttributeValue::N(v)) => v.parse::<usize>().unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        if done < total || item.contains_key("completed_at") {
            return Ok(false);
        }
        let completed = self
            .dynamo
            .client()
            .update_item()
            .table_name(self.dynamo.table())
            .key(PK, s(pk))
            .key(SK, s(DROP_SK))
            .update_expression("SET completed_at = :now")
            .condition_expression("attribute_not_exists(completed_at)")
            .expression_attribute_values(":now", s(chrono::Utc::now().to_rfc3339()))
            .send()
            .await;
        match completed {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(Service::DynamoDb, "UpdateItem", e)),
        }
    }
}

/// Rejects as `collect ingest` writes `rejects.csv`
/// (`file,line,column,value,reason`, cells a spreadsheet would run as a
/// formula escaped by [`ingest::spreadsheet_safe`]).
pub fn rejects_csv(rejects: &[Reject]) -> Vec<u8> {
    fn cell(out: &mut String, value: &str) {
        let value = ingest::spreadsheet_safe(value);
        if value.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&value);
        }
    }
    let mut out = String::from("file,line,column,value,reason\n");
    for r in rejects {
        cell(&mut out, &r.file);
        out.push(',');
        out.push_str(&r.line.to_string());
        for v in [&r.column, &r.value, &r.reason] {
            out.push(',');
            cell(&mut out, v);
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Streams an object through the [`Scanner`], checking it is UTF-8:
/// the chunks `(start, end, first line)` and the header record's bytes (the
/// whole text when it has no line end), or the file's error.
type Scanned = (Vec<(u64, u64, u64)>, Vec<u8>, Scanner);

async fn scan(
    body: &mut aws_sdk_s3::primitives::ByteStream,
    mut scanner: Scanner,
    source: &str,
) -> Result<Result<Scanned, IngestError>, AwsError> {
    let format = scanner.format();
    let mut header: Vec<u8> = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    let not_utf8 = |scanner: &Scanner| IngestError::NotUtf8 {
        file: source.to_string(),
        line: scanner.line(),
    };
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| ServiceError::unreadable(source.to_string(), e))?;
        let mut buf = std::mem::take(&mut carry);
        buf.extend_from_slice(&piece);
        let (valid, bad) = match std::str::from_utf8(&buf) {
            Ok(_) => (buf.len(), false),
            Err(e) => (e.valid_up_to(), e.error_len().is_some()),
        };
        let (good, rest) = buf.split_at(valid);
        if format == Format::Csv && scanner.header_end().is_none() {
            header.extend_from_slice(good);
        }
        scanner.feed(good);
        if bad {
            return Ok(Err(not_utf8(&scanner)));
        }
        carry = rest.to_vec();
        if let Some(end) = scanner.header_end() {
            header.truncate(usize::try_from(end).unwrap_or(usize::MAX));
        } else if header.len() > MAX_HEADER {
            return Ok(Err(IngestError::Malformed {
                file: source.to_string(),
                line: 1,
                message: format!("the header line is longer than {MAX_HEADER} bytes"),
            }));
        }
    }
    if !carry.is_empty() {
        return Ok(Err(not_utf8(&scanner)));
    }
    let ranges = scanner.finish();
    Ok(Ok((ranges, header, scanner)))
}
