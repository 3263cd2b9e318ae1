//! Delivering a batch: the checks and the move to `sending` as one ledger
//! step (fenced by the run's lease token), the mail service message by
//! message (each after a check of the lease by the run's own clock), then
//! the `sent` marks.

use crate::ledger::{Fenced, Ledger, MessageStatus, Move, StoredMessage};
use crate::mailer::{
    Acceptance, FailureClass, MailError, Mailer, RETRY_BUDGET, RETRY_PAUSES, SendReceipt,
};
use crate::message::OutgoingMessage;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::domain::{ActionRecord, ActionStatus, CustomerId};
use policy_lang::eval::Contact;
use std::collections::{HashMap, HashSet};

use super::{
    CrashPoint, Dropped, Kind, RunError, RunReport, RunRequest, SentMessage, Sweeper, Tenure,
    note_dropped, sent_versions, with_status,
};

impl Sweeper<'_> {
    /// Delivers a batch of messages: the checks and the move to `sending`
    /// of the whole batch as one ledger step, then the mail service message
    /// by message, then the `sent` marks as one step. A crash leaves at most
    /// one batch `sending`, which the next run reconciles.
    ///
    /// The move to `sending` is fenced by the run's lease token; before each
    /// hand-over the run checks its lease by its own clock
    /// ([`Sweeper::hold`]). A run that lost its lease stops there: nothing
    /// more is moved or sent, what the mail service accepted is still
    /// recorded `sent`, the rest stays `sending` for the next run.
    ///
    /// Returns the mail service's error when it failed as a whole
    /// ([`FailureClass::Service`]): the batch's messages not handed over are
    /// back to `planned`, recorded, and the run must stop sending.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deliver_batch<L: Ledger, M: Mailer>(
        &self,
        ledger: &L,
        mailer: &M,
        batch: Vec<StoredMessage>,
        req: &RunRequest<'_>,
        tenure: &mut Tenure,
        report: &mut RunReport,
        crash: &impl Fn(CrashPoint, Option<&str>) -> Result<(), RunError>,
    ) -> Result<Option<MailError>, RunError> {
        let day = req.day;
        let now = (req.now)();
        let mut ids: Vec<&str> = batch.iter().map(|m| m.customer_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let carried: Vec<&str> = batch.iter().map(|m| m.message_id.as_str()).collect();
        let mut books = ledger.customer_books(&ids, &carried).await?;
        self.lift_changed_addresses(ledger, &mut books, day).await?;
        let mut new_holds = Vec::new();
        let empty = Book::default();
        // Contacts this batch is about to make, per customer: the checks of
        // a customer's second message count the first.
        let mut making: HashMap<CustomerId, Vec<Contact>> = HashMap::new();
        let mut moves: Vec<Move> = Vec::new();
        // For each move: what it is, to report once the ledger took it.
        let mut kinds: Vec<Kind> = Vec::new();
        for mut m in batch {
            let fresh = books.get(m.customer_id.as_str()).unwrap_or(&empty);
            // The actions of the message as recorded now, still waiting for it.
            let mine: Vec<ActionRecord> = m
                .invoice_ids
                .iter()
                .flat_map(|inv| fresh.actions_of(inv))
                .filter(|a| {
                    m.action_ids.contains(&a.action_id)
                        && a.message_id.as_deref() == Some(m.message_id.as_str())
                        && matches!(
                            a.status,
                            ActionStatus::Planned | ActionStatus::Sending | ActionStatus::Sent
                        )
                })
                .cloned()
                .collect();
            match m.status {
                MessageStatus::Sending => {
                    // Handed over before a crash? Ask before anything else.
                    let answer = match &m.provider_message_id {
                        Some(p) => Acceptance::Accepted {
                            provider_message_id: p.clone(),
                        },
                        // Actions are marked sent only once the service accepted it.
                        None if !mine.is_empty()
                            && mine.iter().all(|a| a.status == ActionStatus::Sent) =>
                        {
                            Acceptance::Accepted {
                                provider_message_id: "(accepted before a crash; id not recorded)"
                                    .to_string(),
                            }
                        }
                        None => mailer
                            .accepted(&m.message_id)
                            .await
                            .unwrap_or(Acceptance::Unknown),
                    };
                    match answer {
                        Acceptance::Accepted {
                            provider_message_id,
                        } => {
                            let sent_on = m.sent_on.unwrap_or(day);
                            // It went out: the checks of the customer's
                            // other messages in this batch count it (the
                            // book read above still has it `sending`).
                            note_contact(&mut making, &m, sent_on);
                            let mut next = m.clone();
                            next.status = MessageStatus::Sent;
                            next.sent_on = Some(sent_on);
                            next.provider_message_id = Some(provider_message_id);
                            next.note =
                                Some("reconciled: the mail service had accepted it".to_string());
                            moves.push(Move {
                                day,
                                actions: sent_versions(&mine, sent_on),
                                next,
                                from: MessageStatus::Sending,
                            });
                            kinds.push(Kind::Reconciled);
                            continue;
                        }
                        Acceptance::Unknown
                            if m.sending_since.is_none_or(|since| {
                                now.signed_duration_since(since) < self.grace
                            }) =>
                        {
                            // It may have gone out: the customer's other
                            // messages are checked as if it had.
                            note_contact(&mut making, &m, day);
                            report.in_doubt.push(m.message_id);
                            continue;
                        }
                        Acceptance::Unknown | Acceptance::NotAccepted => {}
                    }
                }
                MessageStatus::Planned => {}
                MessageStatus::Sent | MessageStatus::Cancelled | MessageStatus::Failed => {
                    continue;
                }
            }

            let mine: Vec<ActionRecord> = mine
                .into_iter()
                .filter(|a| a.status != ActionStatus::Sent)
                .collect();
            let extra = making.get(&m.customer_id).map_or(&[][..], Vec::as_slice);
            let mut checked = self.check(fresh, &m, mine, extra, day);
            new_holds.extend(checked.hold.take());
            let mut actions: Vec<ActionRecord> = checked
                .drop
                .iter()
                .map(|(record, status, reason)| {
                    let mut next = record.clone();
                    next.status = *status;
                    next.note = Some(reason.clone());
                    next.message_id = None;
                    next
                })
                .collect();
            let dropped: Vec<Dropped> = checked
                .drop
                .iter()
                .map(|(record, status, reason)| Dropped {
                    action_id: record.action_id.clone(),
                    message_id: m.message_id.clone(),
                    invoice_id: record.invoice_id.clone(),
                    status: *status,
                    reason: reason.clone(),
                })
                .collect();
            let from = m.status;
            if checked.keep.is_empty() {
                let reason = match checked.drop.first() {
                    Some((_, _, why)) if checked.drop.len() == 1 => why.clone(),
                    Some(_) => {
                        "nothing left to send after the checks (see each action)".to_string()
                    }
                    None => {
                        "its actions were never recorded, or another run moved them".to_string()
                    }
                };
                let mut next = m.clone();
                next.status = MessageStatus::Cancelled;
                next.note = Some(reason.clone());
                moves.push(Move {
                    day,
                    next,
                    from,
                    actions,
                });
                kinds.push(Kind::Cancelled { dropped, reason });
                continue;
            }
            narrow(&mut m, &checked.keep);
            note_contact(&mut making, &m, day);
            // Take it: the conditional move to `sending` makes this run the
            // sender; what the checks dropped moves in the same step.
            let mut next = m;
            next.status = MessageStatus::Sending;
            next.sending_since = Some(now);
            actions.extend(checked.keep.iter().map(|r| {
                let mut next = r.clone();
                next.status = ActionStatus::Sending;
                next
            }));
            moves.push(Move {
                day,
                next,
                from,
                actions,
            });
            kinds.push(Kind::Take { dropped });
        }

        // Holds the checks found (invalid addresses): a task for a person.
        self.write_holds(ledger, new_holds, report).await?;
        // Step 1: reconciliations, cancellations and the move to `sending`,
        // only while the lease still carries this run's token.
        let results = match ledger.move_batch_fenced(&tenure.fence(), &moves).await? {
            Fenced::Written(results) => results,
            Fenced::LeaseLost => return Err(RunError::LostLease(tenure.name.clone())),
        };
        let mut taken: Vec<(StoredMessage, Vec<ActionRecord>)> = Vec::new();
        for ((mv, kind), result) in moves.into_iter().zip(kinds).zip(results) {
            let Some(moved) = result else {
                report.conflicts.push(mv.next.message_id.into());
                continue;
            };
            match kind {
                Kind::Reconciled => report.reconciled.push(mv.next.message_id),
                Kind::Cancelled { dropped, reason } => {
                    note_dropped(report, dropped, &moved);
                    report.cancelled.push((mv.next.message_id, reason));
                }
                Kind::Take { dropped } => {
                    let n = dropped.len();
                    note_dropped(report, dropped, moved.get(..n).unwrap_or_default());
                    let sending: Vec<ActionRecord> = mv
                        .actions
                        .into_iter()
                        .zip(moved)
                        .skip(n)
                        .filter_map(|(a, ok)| ok.then_some(a))
                        .collect();
                    taken.push((mv.next, sending));
                }
            }
        }
        if let Some((first, _)) = taken.first() {
            crash(CrashPoint::AfterMarkedSending, Some(&first.message_id))?;
        }

        // Step 2: the mail service, message by message, each while the
        // lease holds by this run's own clock. A failure is handled by its
        // class (see `FailureClass`); none burns the step.
        let mut finishing: Vec<Move> = Vec::new();
        // Set when the mail service failed as a whole: nothing more is
        // handed over, and what is left of the batch goes back to `planned`.
        let mut stopped: Option<MailError> = None;
        // Set when the run lost its lease: it stops there.
        let mut lost: Option<RunError> = None;
        for (m, sending) in taken {
            if stopped.is_some() {
                report.unsent += 1;
                finishing.push(put_back(
                    m,
                    &sending,
                    day,
                    "not sent: the run stopped sending when the mail service failed; \
                     the next run sends it"
                        .to_string(),
                ));
                continue;
            }
            if let Err(e) = self.hold(ledger, tenure, req).await {
                // Left `sending`: the next run asks the mail service and
                // checks it again (putting it back could undo what the run
                // that took the lease over did with it).
                lost = Some(e);
                break;
            }
            let fresh = books.get(m.customer_id.as_str()).unwrap_or(&empty);
            let Some(customer) = fresh.customers.get(m.customer_id.as_str()) else {
                continue;
            };
            let planned = m.to_planned();
            if mailer.shadow() {
                if let Some(mv) = shadowed(self, fresh, customer, m.clone(), &sending, req, report)
                {
                    finishing.push(mv);
                    continue;
                }
            }
            let outcome = match self.compose_at(fresh, customer, &planned, day, (req.now)()) {
                Ok(msg) => hand_over(mailer, &msg, report)
                    .await
                    .map(|r| (r, msg.subject)),
                Err(e) => Err(MailError::Build {
                    message_id: m.message_id.to_string(),
                    reason: e.to_string(),
                }),
            };
            let e = match outcome {
                Ok((receipt, subject)) => {
                    crash(CrashPoint::AfterAccepted, Some(&m.message_id))?;
                    report.sent.push(SentMessage {
                        message_id: m.message_id.clone(),
                        customer_id: m.customer_id.clone(),
                        to: customer.email.clone(),
                        channel: m.channel,
                        template: m.template.clone(),
                        invoices: m.invoice_ids.clone(),
                        subject,
                    });
                    let mut done = m;
                    done.status = MessageStatus::Sent;
                    done.sent_on = Some(day);
                    done.provider_message_id = Some(receipt.provider_message_id);
                    done.note = None;
                    finishing.push(Move {
                        day,
                        actions: sent_versions(&sending, day),
                        next: done,
                        from: MessageStatus::Sending,
                    });
                    continue;
                }
                Err(e) => e,
            };
            crash(CrashPoint::AfterRefused, Some(&m.message_id))?;
            match e.class() {
                FailureClass::Transient => {
                    // Refused for now, and again after the retries: nothing
                    // went out; the next sweep sends it.
                    let reason = e.to_string();
                    report
                        .retry_later
                        .push((m.message_id.clone(), reason.clone()));
                    finishing.push(put_back(
                        m,
                        &sending,
                        day,
                        format!("the mail service refused it for now: {reason}"),
                    ));
                }
                FailureClass::Service => {
                    // The whole service failed: nothing more is handed
                    // over; this message and the rest stay planned, and the
                    // run fails once what it did is recorded.
                    report.unsent += 1;
                    finishing.push(put_back(
                        m,
                        &sending,
                        day,
                        format!(
                            "not sent: the mail service failed ({e}); the next run sends it once that is fixed"
                        ),
                    ));
                    stopped = Some(e);
                }
                FailureClass::Recipient => {
                    // This recipient refused: nothing went out. The address
                    // is held (a task for a person), the steps are deferred
                    // (never failed, never taken) and go out once it is fixed.
                    let mv = self
                        .hold_for(ledger, m, customer, &sending, &e, day, report)
                        .await?;
                    crash(CrashPoint::AfterHeld, Some(&mv.next.message_id))?;
                    finishing.push(mv);
                }
                FailureClass::Message => {
                    // Our side (a template that does not render): nothing
                    // went out. The steps wait, and go out once it is fixed.
                    let reason = format!(
                        "the message could not be composed: {e}; fix it and the next sweep sends it"
                    );
                    report.failed.push((m.message_id.clone(), reason.clone()));
                    finishing.push(set_aside(m, &sending, day, reason));
                }
            }
        }

        // Step 3: what the mail service said, as one step.
        let done = ledger.move_batch(&finishing).await?;
        if let Some(first) = finishing.first() {
            crash(CrashPoint::AfterMarkedSent, Some(&first.next.message_id))?;
        }
        for (mv, result) in finishing.iter().zip(done) {
            if result.is_none() {
                report.conflicts.push(mv.next.message_id.to_string());
            }
        }
        if let Some(e) = lost {
            return Err(e);
        }
        Ok(stopped)
    }
}

/// Hands a message over; a transient failure is retried after a pause
/// ([`RETRY_PAUSES`]), while the run's retry budget lasts
/// ([`RETRY_BUDGET`]). Any other failure, or the last transient one, is
/// returned.
async fn hand_over<M: Mailer>(
    mailer: &M,
    msg: &OutgoingMessage,
    report: &mut RunReport,
) -> Result<SendReceipt, MailError> {
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        match mailer.send(msg).await {
            Err(e) if e.class() == FailureClass::Transient => match pauses.next() {
                Some(&p) if report.timings.retry_pauses + p <= RETRY_BUDGET => {
                    report.timings.retry_pauses += p;
                    report.retries += 1;
                    mailer.pause(p).await;
                }
                _ => return Err(e),
            },
            other => return other,
        }
    }
}

/// A message taken for sending and not handed over (or refused for now):
/// back to `planned` with its actions, to be sent by a later run.
fn put_back(m: StoredMessage, sending: &[ActionRecord], day: NaiveDate, note: String) -> Move {
    let mut back = m;
    back.status = MessageStatus::Planned;
    back.sending_since = None;
    back.note = Some(note);
    Move {
        day,
        actions: with_status(sending, ActionStatus::Planned, None),
        next: back,
        from: MessageStatus::Sending,
    }
}

/// A message that did not go out for a reason of its own (its recipient,
/// its composition): cancelled, its actions deferred with the reason, so
/// the step is due again and goes out once the cause is fixed.
fn set_aside(m: StoredMessage, sending: &[ActionRecord], day: NaiveDate, reason: String) -> Move {
    let actions = with_status(sending, ActionStatus::Deferred, Some(&reason));
    let mut back = m;
    back.status = MessageStatus::Cancelled;
    back.sending_since = None;
    back.note = Some(reason);
    Move {
        day,
        actions,
        next: back,
        from: MessageStatus::Sending,
    }
}

/// Shadow mode: the message rendered (and built as the mail service would
/// get it) and reported, recorded `cancelled` with its steps `skipped`
/// ([`crate::mailer::Shadow`]). `None` when it does not render: the normal
/// path then records why, as it would for a live run.
fn shadowed(
    sweeper: &Sweeper<'_>,
    book: &Book,
    customer: &collect_engine::domain::Customer,
    m: StoredMessage,
    sending: &[ActionRecord],
    req: &RunRequest<'_>,
    report: &mut RunReport,
) -> Option<Move> {
    let msg = sweeper
        .compose_at(book, customer, &m.to_planned(), req.day, (req.now)())
        .ok()?;
    crate::message::to_rfc5322(&msg).ok()?;
    report.shadowed.push(SentMessage {
        message_id: m.message_id.clone(),
        customer_id: m.customer_id.clone(),
        to: customer.email.clone(),
        channel: m.channel,
        template: m.template.clone(),
        invoices: m.invoice_ids.clone(),
        subject: msg.subject,
    });
    let mut next = m;
    next.status = MessageStatus::Cancelled;
    next.sending_since = None;
    next.note = Some(crate::mailer::SHADOW_NOTE.to_string());
    Some(Move {
        day: req.day,
        actions: with_status(
            sending,
            ActionStatus::Skipped,
            Some(crate::mailer::SHADOW_NOTE),
        ),
        next,
        from: MessageStatus::Sending,
    })
}

/// The message with only the actions that still go out: their invoices,
/// and the template of the most advanced step among them.
fn narrow(m: &mut StoredMessage, keep: &[ActionRecord]) {
    let ids: HashSet<&str> = keep.iter().map(|a| a.action_id.as_str()).collect();
    if ids.len() == m.action_ids.len() {
        return;
    }
    m.action_ids.retain(|id| ids.contains(id.as_str()));
    let invoices: HashSet<&str> = keep.iter().map(|a| a.invoice_id.as_str()).collect();
    m.invoice_ids.retain(|i| invoices.contains(i.as_str()));
    if let Some(lead) = keep
        .iter()
        .max_by_key(|a| (a.step_offset, a.invoice_id.as_str()))
    {
        m.template.clone_from(&lead.target);
        for (k, v) in &mut m.tags {
            if k == "template" {
                v.clone_from(&lead.target);
            }
        }
    }
}

/// A contact this batch makes (or may have made) to the message's customer,
/// for the checks of the customer's other messages in the same batch.
fn note_contact(
    making: &mut HashMap<CustomerId, Vec<Contact>>,
    m: &StoredMessage,
    date: NaiveDate,
) {
    if let Some(channel) = m.channel.contact() {
        making
            .entry(m.customer_id.clone())
            .or_default()
            .push(Contact { date, channel });
    }
}
