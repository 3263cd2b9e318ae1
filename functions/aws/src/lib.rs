//! How the engine runs on AWS: the adapters for DynamoDB, S3, SES v2 and
//! SQS, and the services the Lambda functions wire (the policy bundle they
//! load is [`collect_delivery::bundle`]).
//!
//! The sweep is the same code as locally: the pure
//! [`collect_engine::sweep::plan_sweep`] and the one delivery protocol
//! ([`collect_delivery::delivery::Sweeper::run`]); what differs is the ledger it runs
//! on ([`ledger`]: DynamoDB, one shard at a time, conditional writes) and
//! the mail service (SES v2, with its events for reconciliation).
//!
//! # The table (single-table design, see [`keys`])
//!
//! | item            | `PK`              | `SK`                          | `GSI1PK`                 | `GSI1SK`               |
//! |-----------------|-------------------|-------------------------------|--------------------------|------------------------|
//! | customer        | `C#<customer>`    | `CUSTOMER`                    | `S#<shard>#CUSTOMERS`    | `<customer>`           |
//! | invoice         | `C#<customer>`    | `INVOICE#<invoice>`           | `S#<shard>#OPEN` (open only) | `<due date>#<invoice>` |
//! | payment         | `C#<customer>`    | `PAYMENT#<invoice>#<payment>` |                          |                        |
//! | invoice event   | `C#<customer>`    | `EVENT#<invoice>#<event id>`  |                          |                        |
//! | action          | `C#<customer>`    | `ACTION#<action id>`          | `WORK#<shard>` (awaiting approval, planned call) | `<queue>#<decided on>#<entry>` |
//! | contact hold    | `C#<customer>`    | `HOLD#<address, lower case>`  | `WORK#<shard>` (open only) | `contacts#<since>#<entry>` |
//! | payment history | `C#<customer>`    | `HIST`                        |                          |                        |
//! | folded item     | `C#<customer>`    | `~<invoice>#<its live SK>`    |                          |                        |
//! | invoice → customer | `I#<invoice>`  | `REF`                         |                          |                        |
//! | message         | `M#<message id>`  | `MESSAGE`                     | `S#<shard>#MESSAGES` (planned/sending only) | `<planned on>#<message>` |
//! | lease           | `L#<name>`        | `LEASE`                       |                          |                        |
//! | CSV drop (TTL)  | `D#<bucket>/<key>@<version>` | `DROP`             |                          |                        |
//! | mail event (TTL)| `M#<message id>` or `A#<action id>` | `EVENT#<event id>` |                   |                        |
//!
//! Access patterns:
//! - **the daily sweep, per shard**: Query the global secondary index
//!   `GSI1` for `GSI1PK = S#<shard>#OPEN AND GSI1SK <= <day + look-ahead>`:
//!   the open invoices due up to the policy's earliest step (and every
//!   overdue one), never a Scan. The index is *sparse*: an invoice carries
//!   `GSI1PK`/`GSI1SK` only while it is open (the payment that settles it
//!   removes them), so the index holds open invoices only. Customers are
//!   spread over the table's *virtual* shards (`VIRTUAL_SHARDS`, 1,024 on
//!   a new stack) by a hash of their id ([`keys::shard_of`]), so no index
//!   partition is hot; the coordinator fans the day out in `SHARDS` jobs,
//!   each a range of virtual shards ([`keys::worker_ranges`]), which a
//!   worker sweeps one virtual shard at a time, continuing in a new
//!   invocation before its time limit ([`sweep`]). `SHARDS` can change any
//!   day; changing the virtual shards re-indexes the keys ([`reshard`]).
//!   The desk's `WORK#<n>` keys fold the virtual shard onto at most 64
//!   partitions ([`keys::work_partition`]);
//! - **what a sweep decides from**, per customer: one Query on
//!   `PK = C#<customer> AND SK < "~"`: the live items (customer, open and
//!   recently settled invoices with their payments, events and actions,
//!   holds) and `HIST`, the customer's payment history
//!   ([`collect_engine::history::PaymentHistory`]: the sum of its folded
//!   invoices). An invoice settled with every payment, event and step
//!   before the sweep's `since` is *folded* by the sweep: its items move to
//!   `~<invoice>#…` in the same partition and `HIST` adds it (see
//!   `dynamo::fold`), so what a sweep reads does not grow with history;
//! - **a customer's whole history** (explain, audit, the desk's customer
//!   page, training): one Query on `PK = C#<customer>`, paginated: the live
//!   items and the folded copies `HIST` names;
//! - **a payment or invoice event**, which names only the invoice: GetItem
//!   on `I#<invoice>`/`REF` for the customer, then a write in its partition;
//! - **training**: Query `GSI1PK = S#<shard>#CUSTOMERS` for the customers of
//!   each virtual shard, streamed through a bounded sample
//!   ([`train::Sample`]), then the sampled customers' histories;
//! - **the unfinished messages of a shard**: Query
//!   `GSI1PK = S#<shard>#MESSAGES` (keys only), then the messages
//!   themselves with consistent BatchGetItem requests of up to 100 keys
//!   (an index read is never consistent, and their status decides who
//!   sends);
//! - **the desk's queue** (open work: letters awaiting approval, planned
//!   calls, addresses to fix): Query `GSI1PK = WORK#<shard>`, every shard
//!   at once (one queue: `begins_with(GSI1SK, <queue>#)`), keys only; the
//!   entry a row needs
//!   (kind, invoice, balance when the sweep recorded it, due date, risk,
//!   "call again on") is in `GSI1SK` itself, so a page of the queue costs
//!   the index Query's pages plus the page's customers, never a Scan. Every
//!   write of an action or hold sets or removes the keys (`dynamo::work`);
//! - **mail events** for a message (reconciliation before a re-send):
//!   Query `PK = M#<message id>`, `SK begins_with EVENT#`.
//!
//! Writes:
//! - records (customers, invoices, payments) are upserts, so re-delivered
//!   ERP events are harmless; CSV drops are split into chunks of whole
//!   rows ([`drops`]), each read with BatchGetItem and written through
//!   BatchWriteItem in requests of 25 (conditional writes in parallel for
//!   records with `updated_at`), re-sending `UnprocessedItems` with backoff;
//! - invoice and mail events are written with `attribute_not_exists(PK)`
//!   on their deterministic id: a re-delivered event is applied once;
//! - a new action is written with `attribute_not_exists(PK)` on its
//!   deterministic id, a changed one on the condition that its status is
//!   still the one the sweep saw: a retried or concurrent sweep cannot
//!   record (or send) twice. Every action write is one UpdateItem that
//!   also appends the change to the item's `trail` list (day, status,
//!   note, by, risk: SQLite's `action_log`), so the audit trail costs no
//!   request of its own and is read with the action
//!   ([`collect_delivery::ledger::Ledger::trail`]);
//! - mail events and the event de-duplication items carry the TTL attribute
//!   `expires_at` (epoch seconds) and expire; invoice facts (disputes,
//!   promises, plans) do not, as a two-year-old dispute still decides how
//!   an open invoice is treated.
//!
//! # The sending protocol (SES)
//!
//! The protocol is [`collect_delivery::delivery`]'s, the same as locally: a worker
//! takes its shard's lease (`L#sweep-shard-<n>`, a conditional put with an
//! expiry and a fencing token, held in the name of its Lambda request id;
//! a second worker on the shard fails its SQS message, which is delivered
//! again later; the worker gives the lease back by a conditional put that
//! keeps it, expired, with its token), records the planned messages with
//! their whole content, then the actions (conditionally), and delivers
//! every unfinished message of the shard (the sparse `S#<shard>#MESSAGES`
//! index finds them, whatever day they were planned): each is checked again
//! against the customer's current partition just before it goes out, moved
//! `planned → sending` by a conditional write (only one worker can) in a
//! `TransactWriteItems` with a `ConditionCheck` of the lease's token (a
//! worker that lost its lease moves nothing), handed to SES once the worker
//! has checked its lease by its own clock, and recorded `sent` with SES's
//! message id. Every message carries
//! the tags `message_id` (and `action_id`, `step`, `arm` when it carries one
//! action), and the configuration set publishes SES's events to the
//! `events` function, which stores them under the message.
//!
//! A message found `sending` on a later run (the worker died between
//! recording and SES's answer) is reconciled before anything is re-sent
//! ([`ses::SesWithEvents`]): if SES's message id was recorded or any SES
//! event names the message, it went out, and is marked `sent` without
//! sending; if nothing is known and the message has been `sending` for less
//! than the grace period, it is left alone (SES events may still be on
//! their way); only after the grace period with no event at all — SES never
//! accepted it — is it checked again and sent. The grace period
//! (`SENDING_GRACE_MINUTES`, default 60) must exceed the delay of SES's
//! events through SNS to the `events` function; the alarms on that
//! function's errors and dead letters watch that path.
//!
//! The conformance suite of the protocol runs against this ledger on the
//! local endpoint (`tests/tests/ledger_conformance.rs`), as it runs against
//! the SQLite and in-memory ones.
//!
//! # Errors
//!
//! Every adapter answers [`AwsError`] ([`error`]): which service and call
//! failed with the service's own code, which setting is missing or wrong,
//! which stored item is damaged; [`AwsError::retryable`] says whether the
//! SQS message or event that led to it should come back.

pub mod artifacts;
pub mod config;
pub mod dead_letter;
mod drop_ingest;
pub mod drops;
pub mod dynamo;
pub mod error;
pub mod events;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod pacing;
pub mod preflight;
pub mod queue;
pub mod reshard;
pub mod ses;
pub mod sweep;
pub mod train;

pub use error::{AwsError, ConfigError, Service, ServiceError};
