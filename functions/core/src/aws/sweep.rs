//! The daily sweep on AWS: a coordinator that fans the day out into one
//! SQS message per shard, and a worker that sweeps one shard.
//!
//! **Fan-out.** A book of a million open invoices does not fit one Lambda
//! invocation (15 minutes, a few GB), so the coordinator only enqueues
//! `shards` small jobs `{day, shard}`; each worker loads the customers of
//! its shard that have an open invoice in the policy's window (one Query on
//! the sparse index, then one Query per customer), runs the pure
//! [`plan_sweep`] on that book, records and sends. With 64 shards a worker
//! sees ~16,000 invoices. Concurrency is bounded by the SQS event source's
//! *maximum concurrency* (see `infra/template.yaml`), so DynamoDB and SES
//! see a steady rate, not a burst.
//!
//! **Re-delivery does nothing twice.** SQS delivers at least once, and a
//! worker may time out half-way. A re-run of a shard plans against what is
//! recorded: actions already taken are not due again; the new actions it
//! would write again exist already (the conditional write refuses them, and
//! a refused action is not sent by this run); a message is sent only by the
//! worker that moved it from `planned` to `sending`; one left in `sending`
//! is reconciled from SES's events before any re-send (see the sending
//! protocol in the [module docs](super)).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use policy_lang::Policy;
use serde::Serialize;

use super::AwsError;
use super::dynamo::{Dynamo, MessageStatus, StoredMessage};
use super::queue::{Queue, ShardJob};
use super::ses::SesMailer;
use crate::book::Book;
use crate::domain::{ActionRecord, ActionStatus};
use crate::message::{MailError, NullMailer, PayLinks, Templates};
use crate::runner::{Runtime, Sender};
use crate::sweep::{RiskScorer, SweepOptions, plan_sweep};

/// Days past the policy's earliest step that the window reaches, for
/// business-day shifts (weekends, holidays) of step dates.
const WINDOW_SLACK_DAYS: i64 = 7;

/// The jobs of one day: one per shard.
pub fn shard_jobs(day: NaiveDate, shards: u32) -> Vec<ShardJob> {
    (0..shards.max(1))
        .map(|shard| ShardJob { day, shard })
        .collect()
}

/// The coordinator: enqueues one job per shard; returns how many.
pub async fn enqueue_day(queue: &Queue, day: NaiveDate, shards: u32) -> Result<usize, AwsError> {
    queue.send_all(&shard_jobs(day, shards)).await
}

/// How many days before its due date an invoice may need a step: the
/// policy's earliest (most negative) step offset, plus slack.
pub fn look_ahead_days(policy: &Policy) -> u64 {
    let earliest = policy
        .ladders
        .iter()
        .flat_map(|l| l.steps.iter())
        .map(|s| s.offset)
        .min()
        .unwrap_or(0);
    u64::try_from((-earliest).max(0) + WINDOW_SLACK_DAYS).unwrap_or(0)
}

/// What a worker needs besides the table and SES: the policy bundle in
/// force, the scorer, and the sending settings.
pub struct SweepService {
    pub dynamo: Dynamo,
    pub mailer: SesMailer,
    pub policy: Policy,
    pub templates: Templates,
    pub scorer: Box<dyn RiskScorer + Send + Sync>,
    pub pay_links: PayLinks,
    pub sender: Sender,
    pub options: SweepOptions,
    pub pay_link_days: u64,
    /// How long a message may stay `sending` with no SES event before it
    /// is taken as never accepted and sent again.
    pub grace: chrono::Duration,
}

/// What one shard's run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardReport {
    pub day: Option<NaiveDate>,
    pub shard: u32,
    pub customers: usize,
    pub open_invoices: usize,
    /// Action records written by this run.
    pub recorded: usize,
    /// Actions another run had recorded or moved first (left alone).
    pub conflicts: usize,
    /// Messages sent by this run.
    pub sent: Vec<String>,
    /// Messages found `sending` and shown by SES's events to have gone out.
    pub reconciled: Vec<String>,
    /// Messages `sending` within the grace period: left for a later run.
    pub in_doubt: Vec<String>,
    /// Messages another worker is sending.
    pub taken: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Messages SES refused for now; back to `planned` for the next run.
    pub retry_later: Vec<(String, String)>,
    pub policy_revision: Option<String>,
}

enum Outcome {
    Sent,
    Reconciled,
    InDoubt,
    Taken,
    Failed(String),
    RetryLater(String),
    Skipped,
}

impl SweepService {
    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            policy: &self.policy,
            scorer: self.scorer.as_ref(),
            templates: &self.templates,
            pay_links: &self.pay_links,
            mailer: &NullMailer,
            sender: self.sender.clone(),
            options: self.options.clone(),
            pay_link_days: self.pay_link_days,
        }
    }

    /// Sweeps one shard for one day. `now` is only used for the grace
    /// period of reconciliation; the decision depends on `job.day` alone.
    pub async fn run_shard(
        &self,
        job: ShardJob,
        now: DateTime<Utc>,
    ) -> Result<ShardReport, AwsError> {
        let day = job.day;
        let through = day
            .checked_add_days(Days::new(look_ahead_days(&self.policy)))
            .unwrap_or(day);
        let customers = self.dynamo.open_customers(job.shard, through).await?;
        let book = self.dynamo.load_book(&customers).await?;
        let plan = plan_sweep(
            &book,
            &self.policy,
            self.scorer.as_ref(),
            day,
            &self.options,
        );
        let mut report = ShardReport {
            day: Some(day),
            shard: job.shard,
            customers: customers.len(),
            open_invoices: plan.open_invoices,
            policy_revision: self.options.git_revision.clone(),
            ..ShardReport::default()
        };

        let previous: HashMap<String, ActionStatus> = book
            .actions
            .values()
            .flatten()
            .map(|a| (a.action_id.clone(), a.status))
            .collect();
        let recorded = self.dynamo.record_actions(&plan.records, &previous).await?;
        report.recorded = recorded.written.len();
        report.conflicts = recorded.conflicts.len();
        let written: HashSet<&String> = recorded.written.iter().collect();

        // Current records: as loaded, then as this run wrote them.
        let mut records: HashMap<String, ActionRecord> = book
            .actions
            .values()
            .flatten()
            .map(|a| (a.action_id.clone(), a.clone()))
            .collect();
        for r in plan
            .records
            .iter()
            .filter(|r| written.contains(&r.action_id))
        {
            records.insert(r.action_id.clone(), r.clone());
        }

        // This run's messages, when it owns all their actions.
        let mut to_deliver: BTreeSet<String> = BTreeSet::new();
        for m in &plan.messages {
            if m.action_ids.iter().all(|a| written.contains(a)) {
                self.dynamo.put_message(&StoredMessage::new(m, day)).await?;
                to_deliver.insert(m.message_id.clone());
            }
        }
        // Messages of earlier runs that never reached `sent` (a crash).
        for a in records.values() {
            if let (Some(mid), ActionStatus::Planned | ActionStatus::Sending) =
                (&a.message_id, a.status)
            {
                if a.decided_on <= day {
                    to_deliver.insert(mid.clone());
                }
            }
        }
        for mid in &to_deliver {
            match self.deliver(&book, &records, mid, day, now).await? {
                Outcome::Sent => report.sent.push(mid.clone()),
                Outcome::Reconciled => report.reconciled.push(mid.clone()),
                Outcome::InDoubt => report.in_doubt.push(mid.clone()),
                Outcome::Taken => report.taken.push(mid.clone()),
                Outcome::Failed(why) => report.failed.push((mid.clone(), why)),
                Outcome::RetryLater(why) => report.retry_later.push((mid.clone(), why)),
                Outcome::Skipped => {}
            }
        }
        tracing::info!(
            shard = job.shard,
            day = %day,
            customers = report.customers,
            recorded = report.recorded,
            conflicts = report.conflicts,
            sent = report.sent.len(),
            reconciled = report.reconciled.len(),
            in_doubt = report.in_doubt.len(),
            failed = report.failed.len(),
            policy_revision = report.policy_revision.as_deref().unwrap_or(""),
            "shard swept"
        );
        Ok(report)
    }

    /// Moves a message's actions to `to`, each only from `from`.
    async fn move_actions(
        &self,
        records: &HashMap<String, ActionRecord>,
        action_ids: &[String],
        from: &[ActionStatus],
        to: ActionStatus,
        day: NaiveDate,
        note: Option<&str>,
    ) -> Result<(), AwsError> {
        for id in action_ids {
            let Some(r) = records.get(id) else { continue };
            let mut next = r.clone();
            next.status = to;
            if to == ActionStatus::Sent {
                next.sent_on = Some(day);
                next.note = None;
            }
            if let Some(n) = note {
                next.note = Some(n.to_string());
            }
            if !self.dynamo.put_action(&next, from).await? {
                tracing::warn!(action_id = %id, to = to.as_str(), "action was moved by another run");
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        book: &Book,
        records: &HashMap<String, ActionRecord>,
        message_id: &str,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Outcome, AwsError> {
        let Some(state) = self.dynamo.message(message_id).await? else {
            tracing::warn!(message_id, "no message item for planned actions");
            return Ok(Outcome::Skipped);
        };
        let ids = state.message.action_ids.clone();
        let live = [ActionStatus::Planned, ActionStatus::Sending];
        match state.status {
            MessageStatus::Sent => {
                self.move_actions(records, &ids, &live, ActionStatus::Sent, day, None)
                    .await?;
                return Ok(Outcome::Reconciled);
            }
            MessageStatus::Failed => return Ok(Outcome::Skipped),
            MessageStatus::Sending => {
                let events = self.dynamo.mail_events(message_id).await?;
                let provider = state
                    .provider_message_id
                    .clone()
                    .or_else(|| events.iter().find_map(|e| e.provider_message_id.clone()));
                if state.provider_message_id.is_some() || !events.is_empty() {
                    self.dynamo
                        .transition_message(
                            message_id,
                            MessageStatus::Sending,
                            MessageStatus::Sent,
                            now,
                            provider.as_deref(),
                            Some("reconciled from SES events"),
                        )
                        .await?;
                    self.move_actions(records, &ids, &live, ActionStatus::Sent, day, None)
                        .await?;
                    return Ok(Outcome::Reconciled);
                }
                let since = state.sending_since.unwrap_or(now);
                if now.signed_duration_since(since) < self.grace {
                    return Ok(Outcome::InDoubt);
                }
                tracing::warn!(
                    message_id,
                    since = %since,
                    "no SES event after the grace period: SES never accepted it; sending again"
                );
            }
            MessageStatus::Planned => {
                if !self
                    .dynamo
                    .transition_message(
                        message_id,
                        MessageStatus::Planned,
                        MessageStatus::Sending,
                        now,
                        None,
                        None,
                    )
                    .await?
                {
                    return Ok(Outcome::Taken);
                }
            }
        }
        self.move_actions(records, &ids, &live, ActionStatus::Sending, day, None)
            .await?;
        let planned = state.message.planned();
        let composed = match book.customers.get(&planned.customer_id) {
            Some(customer) => self.runtime().compose(book, customer, &planned, day),
            None => Err(format!(
                "customer `{}` is not in the book",
                planned.customer_id
            )),
        };
        let sent = match composed {
            Ok(msg) => self.mailer.send_async(&msg).await,
            Err(reason) => Err(MailError::Build {
                message_id: message_id.to_string(),
                reason,
            }),
        };
        let sending = [ActionStatus::Sending];
        match sent {
            Ok(receipt) => {
                self.dynamo
                    .transition_message(
                        message_id,
                        MessageStatus::Sending,
                        MessageStatus::Sent,
                        now,
                        Some(&receipt.provider_message_id),
                        None,
                    )
                    .await?;
                self.move_actions(records, &ids, &sending, ActionStatus::Sent, day, None)
                    .await?;
                Ok(Outcome::Sent)
            }
            Err(MailError::Provider {
                reason,
                retryable: true,
                ..
            }) => {
                // SES refused it for now (throttled): nothing went out.
                self.dynamo
                    .transition_message(
                        message_id,
                        MessageStatus::Sending,
                        MessageStatus::Planned,
                        now,
                        None,
                        Some(&reason),
                    )
                    .await?;
                self.move_actions(records, &ids, &sending, ActionStatus::Planned, day, None)
                    .await?;
                Ok(Outcome::RetryLater(reason))
            }
            Err(e) => {
                let reason = format!("the mail service refused it: {e}");
                self.dynamo
                    .transition_message(
                        message_id,
                        MessageStatus::Sending,
                        MessageStatus::Failed,
                        now,
                        None,
                        Some(&reason),
                    )
                    .await?;
                self.move_actions(
                    records,
                    &ids,
                    &sending,
                    ActionStatus::Failed,
                    day,
                    Some(&reason),
                )
                .await?;
                Ok(Outcome::Failed(reason))
            }
        }
    }
}

/// Sending settings, from the environment set by the template.
#[derive(Debug, Clone)]
pub struct SendSettings {
    pub sender: Sender,
    /// `PAY_URL_PATTERN`, with `{token}`.
    pub pay_url: String,
    /// `PAY_LINK_SECRET_ID`: the Secrets Manager secret holding the key.
    pub pay_link_secret: String,
    /// `SES_CONFIGURATION_SET`
    pub configuration_set: Option<String>,
    pub send_time_utc: NaiveTime,
    pub pay_link_days: u64,
    pub grace_minutes: i64,
}

impl SendSettings {
    pub fn from_env() -> Result<SendSettings, AwsError> {
        use super::config::{env, env_opt};
        let send_time = env_opt("SEND_TIME_UTC").unwrap_or_else(|| "14:00".to_string());
        Ok(SendSettings {
            sender: Sender {
                company: env_opt("COMPANY_NAME").unwrap_or_else(|| "Accounts receivable".into()),
                email: env("SENDER_ADDRESS")?,
                reply_to: env_opt("REPLY_TO_ADDRESS"),
            },
            pay_url: env("PAY_URL_PATTERN")?,
            pay_link_secret: env("PAY_LINK_SECRET_ID")?,
            configuration_set: env_opt("SES_CONFIGURATION_SET"),
            send_time_utc: NaiveTime::parse_from_str(&send_time, "%H:%M").map_err(|_| {
                AwsError::Config(format!(
                    "SEND_TIME_UTC `{send_time}` is not a time like 14:00"
                ))
            })?,
            pay_link_days: env_opt("PAY_LINK_DAYS")
                .and_then(|d| d.parse().ok())
                .unwrap_or(45),
            grace_minutes: env_opt("SENDING_GRACE_MINUTES")
                .and_then(|d| d.parse().ok())
                .unwrap_or(60),
        })
    }
}

impl SweepService {
    /// Everything a worker loads once per container: the verified bundle
    /// (refused bundles fail the load), the current model (or the fallback
    /// scorer), the pay-link key. `scratch` is where the bundle's templates
    /// are written (`/tmp/…` on Lambda).
    pub async fn load(
        clients: &super::config::Clients,
        settings: &super::config::Settings,
        send: &SendSettings,
        scratch: &std::path::Path,
    ) -> Result<SweepService, AwsError> {
        let artifacts = super::artifacts::Artifacts::new(clients.s3.clone(), &settings.bucket);
        let bundle = artifacts.current_bundle().await?;
        let dir = scratch.join(format!(
            "bundle-{}",
            bundle.sha256.get(..16).unwrap_or(&bundle.sha256)
        ));
        let loaded = bundle.load(&dir)?;
        let scorer = super::train::load_scorer(&artifacts).await?;
        let key = super::config::secret(&clients.secrets, &send.pay_link_secret).await?;
        let pay_links = PayLinks::new(key.trim().as_bytes(), &send.pay_url)
            .map_err(|e| AwsError::Config(format!("pay links: {e}")))?;
        tracing::info!(
            policy = %loaded.policy.name,
            policy_revision = %loaded.revision,
            bundle_sha256 = %loaded.sha256,
            scorer = scorer.name(),
            scorer_version = scorer.version(),
            "sweep loaded"
        );
        Ok(SweepService {
            dynamo: Dynamo::new(clients.dynamodb.clone(), &settings.table, settings.shards),
            mailer: SesMailer::new(clients.ses.clone(), send.configuration_set.clone()),
            policy: loaded.policy,
            templates: loaded.templates,
            scorer,
            pay_links,
            sender: send.sender.clone(),
            options: SweepOptions {
                git_revision: Some(loaded.revision),
                send_time_utc: send.send_time_utc,
                customer_local_time: None,
            },
            pay_link_days: send.pay_link_days,
            grace: chrono::Duration::minutes(send.grace_minutes),
        })
    }
}
