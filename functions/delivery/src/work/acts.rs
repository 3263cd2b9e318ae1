//! What a person does at the desk. Each act checks the person's role
//! first, writes conditionally (a decision taken twice, in two tabs, is
//! recorded once; the second is told it was already decided), and leaves
//! a trail line or an event naming the person.

use super::read::{checks, kind_of, no_task, reopenable};
use super::{
    AccountDecision, Act, BulkOutcome, CallOutcome, Desk, DeskError, Outcome, Person, WorkKind,
    WorkQuery, allow, optional, required,
};
use crate::explain::PolicySource;
use crate::ledger::{Ledger, TrailNote};
use chrono::{Datelike, Days, NaiveDate, Weekday};
use collect_engine::contact::{
    ContactHold, HoldEnd, HoldEnding, HoldReason, customer_of_hold_task, hold_task_id,
};
use collect_engine::domain::{ActionRecord, ActionStatus, Channel, Event, EventKind};
use sha2::{Digest, Sha256};

/// How far ahead a promise to pay may be dated.
pub const PROMISE_MAX_DAYS: i64 = 366;

impl<L: Ledger + ?Sized, P: PolicySource + ?Sized> Desk<'_, L, P> {
    /// Approves a letter awaiting approval, after the re-checks of
    /// `collect tasks approve`: refused ([`DeskError::Blocked`]) with every
    /// reason when the invoice is settled, disputed or promised, the
    /// customer asked not to be contacted, their address is held, dunning
    /// stopped, or one of the policy's holds applies today.
    pub async fn approve(
        &self,
        who: &Person,
        customer_id: &str,
        task_id: &str,
    ) -> Result<Outcome, DeskError> {
        allow(who, Act::Approve)?;
        let record = self.record(customer_id, task_id).await?;
        self.approve_record(who, record).await
    }

    async fn approve_record(
        &self,
        who: &Person,
        record: ActionRecord,
    ) -> Result<Outcome, DeskError> {
        expect(&record, ActionStatus::AwaitingApproval, "approved")?;
        let book = self.ledger.customer_book(&record.customer_id).await?;
        let (mut reasons, _) = checks(&book, &record, self.today);
        match self.policy_holds(&book, &record).await {
            Ok(holds) => reasons.extend(holds),
            Err(e) => reasons.push(e),
        }
        if !reasons.is_empty() {
            return Err(DeskError::Blocked {
                id: record.action_id.to_string(),
                reasons,
            });
        }
        let said = format!(
            "approved by {} on {}; goes out with {}",
            who.id,
            self.today,
            self.settings.next_sweep.describe()
        );
        self.decide(who, record, ActionStatus::Approved, &said, "approved")
            .await
    }

    /// Rejects a letter awaiting approval; the reason is required.
    pub async fn reject(
        &self,
        who: &Person,
        customer_id: &str,
        task_id: &str,
        reason: &str,
    ) -> Result<Outcome, DeskError> {
        allow(who, Act::Approve)?;
        let reason = required("reason", reason)?;
        let record = self.record(customer_id, task_id).await?;
        expect(&record, ActionStatus::AwaitingApproval, "rejected")?;
        let said = format!("rejected by {} on {}: {reason}", who.id, self.today);
        self.decide(who, record, ActionStatus::Rejected, &said, "rejected")
            .await
    }

    /// Undoes a decision taken today — an approval not yet sent, a
    /// rejection, a call marked done — with a new trail line (nothing is
    /// deleted); the reason is required.
    pub async fn reopen(
        &self,
        who: &Person,
        customer_id: &str,
        task_id: &str,
        reason: &str,
    ) -> Result<Outcome, DeskError> {
        let record = self.record(customer_id, task_id).await?;
        allow(
            who,
            if kind_of(&record) == WorkKind::Call {
                Act::Call
            } else {
                Act::Approve
            },
        )?;
        let reason = required("reason", reason)?;
        if !reopenable(&record, self.today) {
            return Err(match record.status {
                ActionStatus::Approved | ActionStatus::Rejected | ActionStatus::Sent
                    if record.decided_by.is_some() && record.decided_at != Some(self.today) =>
                {
                    DeskError::NotToday {
                        id: task_id.to_string(),
                        on: record.decided_at,
                    }
                }
                status => DeskError::WrongStatus {
                    id: task_id.to_string(),
                    status: status.as_str().replace('_', " "),
                    verb: "reopened",
                },
            });
        }
        let back = if record.channel == Channel::Call {
            ActionStatus::Planned
        } else {
            ActionStatus::AwaitingApproval
        };
        let from = record.status;
        let mut next = record.clone();
        next.status = back;
        next.sent_on = None;
        next.decided_by = Some(who.id.clone());
        next.decided_at = Some(self.today);
        next.note = Some(format!(
            "reopened by {} on {} (was {}): {reason}",
            who.id,
            self.today,
            from.as_str().replace('_', " ")
        ));
        if !self.ledger.move_action(&next, &[from], self.today).await? {
            return Err(self.already(task_id, customer_id, "reopened").await);
        }
        Ok(Outcome {
            task_id: task_id.to_string(),
            said: next.note.unwrap_or_default(),
        })
    }

    /// Approves every letter awaiting approval that `q` matches (all
    /// pages), once the person confirmed their number: refused
    /// ([`DeskError::CountChanged`]) when it changed since; each letter
    /// whose re-checks fail is reported with its reasons, the others
    /// approved.
    pub async fn bulk_approve(
        &self,
        who: &Person,
        q: &WorkQuery,
        confirmed: usize,
    ) -> Result<BulkOutcome, DeskError> {
        allow(who, Act::Approve)?;
        let mut only = q.clone();
        only.kind = Some(WorkKind::Approval);
        let (rows, _) = self.matching(&only).await?;
        if rows.len() != confirmed {
            return Err(DeskError::CountChanged {
                confirmed,
                found: rows.len(),
            });
        }
        let mut out = BulkOutcome {
            approved: vec![],
            refused: vec![],
        };
        for row in rows {
            let done = match self.record(&row.customer_id, &row.task_id).await {
                Ok(record) => self.approve_record(who, record).await,
                Err(e) => Err(e),
            };
            match done {
                Ok(o) => out.approved.push(o),
                Err(DeskError::Ledger(e)) => return Err(DeskError::Ledger(e)),
                Err(e) => out.refused.push((row.task_id, e.to_string())),
            }
        }
        Ok(out)
    }

    /// Records a call's outcome on a planned call task:
    /// - promised to pay by a day: a `promise_to_pay` event (the policy's
    ///   promise hold applies from the next sweep); the call is done;
    /// - disputed: a `dispute_opened` event; the call is done;
    /// - wrong or missing contact: the customer's address is held with the
    ///   new details (an address-to-fix task); the call is done;
    /// - no answer: the call stays open, out of the queue until the
    ///   settings' business days have passed;
    /// - a note: a trail line.
    pub async fn record_call(
        &self,
        who: &Person,
        customer_id: &str,
        task_id: &str,
        outcome: &CallOutcome,
    ) -> Result<Outcome, DeskError> {
        allow(who, Act::Call)?;
        let record = self.record(customer_id, task_id).await?;
        if record.channel != Channel::Call {
            return Err(DeskError::Invalid {
                field: "outcome",
                reason: format!(
                    "task `{task_id}` is a {}, not a call",
                    record.channel.as_str()
                ),
            });
        }
        expect(&record, ActionStatus::Planned, "worked as a call")?;
        let today = self.today;
        let by = &who.id;
        match outcome {
            CallOutcome::Reached { note } => {
                let note = optional("note", note.as_deref())?;
                let said = with_note(format!("reached by {by} on {today}"), note.as_deref());
                self.call_done(who, record, &said).await?;
                Ok(Outcome {
                    task_id: task_id.to_string(),
                    said: format!("{said}; the call is done"),
                })
            }
            CallOutcome::Promised { until, note } => {
                let note = optional("note", note.as_deref())?;
                if *until < today || (*until - today).num_days() > PROMISE_MAX_DAYS {
                    return Err(DeskError::Invalid {
                        field: "until",
                        reason: format!(
                            "a promise to pay is dated from today ({today}) to at most \
                             {PROMISE_MAX_DAYS} days ahead"
                        ),
                    });
                }
                let said = with_note(
                    format!("reached by {by} on {today}: promised to pay by {until}"),
                    note.as_deref(),
                );
                let event = self.event(
                    &record,
                    EventKind::PromiseToPay {
                        promised_until: *until,
                    },
                    who,
                    note,
                );
                self.call_done(who, record, &said).await?;
                self.ledger
                    .record_events(customer_id, std::slice::from_ref(&event))
                    .await?;
                Ok(Outcome {
                    task_id: task_id.to_string(),
                    said: format!("{said}; the promise holds reminders from the next sweep"),
                })
            }
            CallOutcome::Disputed { note } => {
                let note = required("note", note)?;
                let said = format!("reached by {by} on {today}: disputed: {note}");
                let event = self.event(&record, EventKind::DisputeOpened, who, Some(note));
                self.call_done(who, record, &said).await?;
                self.ledger
                    .record_events(customer_id, std::slice::from_ref(&event))
                    .await?;
                Ok(Outcome {
                    task_id: task_id.to_string(),
                    said: format!("{said}; the dispute holds reminders from the next sweep"),
                })
            }
            CallOutcome::WrongContact { email, phone, note } => {
                let email = optional("email", email.as_deref())?;
                if let Some(e) = &email
                    && e.parse::<lettre::Address>().is_err()
                {
                    return Err(DeskError::Invalid {
                        field: "email",
                        reason: format!("`{e}` is not an email address"),
                    });
                }
                let phone = optional("phone", phone.as_deref())?;
                if let Some(p) = &phone
                    && (p.len() > 40
                        || !p.chars().any(|c| c.is_ascii_digit())
                        || !p
                            .chars()
                            .all(|c| c.is_ascii_digit() || " +-()./".contains(c)))
                {
                    return Err(DeskError::Invalid {
                        field: "phone",
                        reason: format!("`{p}` is not a phone number"),
                    });
                }
                let note = optional("note", note.as_deref())?;
                if email.is_none() && phone.is_none() && note.is_none() {
                    return Err(DeskError::Invalid {
                        field: "email",
                        reason: "give the right email or phone, or a note saying what is wrong"
                            .to_string(),
                    });
                }
                let book = self.ledger.customer_book(customer_id).await?;
                let current = book
                    .customers
                    .get(customer_id)
                    .map(|c| c.email.clone())
                    .unwrap_or_default();
                let mut words = format!("wrong contact reported on a call by {by}");
                if let Some(e) = &email {
                    words.push_str(&format!("; new email: {e}"));
                }
                if let Some(p) = &phone {
                    words.push_str(&format!("; new phone: {p}"));
                }
                if let Some(n) = &note {
                    words.push_str(&format!("; {n}"));
                }
                let said = format!("{words} on {today}");
                self.call_done(who, record, &said).await?;
                self.ledger
                    .hold_contact(&ContactHold {
                        customer_id: customer_id.into(),
                        address: current,
                        reason: HoldReason::InvalidAddress { words },
                        since: today,
                        source: format!("desk:{by}"),
                        ended: None,
                    })
                    .await?;
                Ok(Outcome {
                    task_id: hold_task_id(customer_id),
                    said: format!(
                        "{said}; mail to the customer is held until the ERP brings the new \
                         details or the address task is closed"
                    ),
                })
            }
            CallOutcome::NoAnswer { note } => {
                let note = optional("note", note.as_deref())?;
                let again = add_business_days(
                    today,
                    self.settings.call_again_business_days.max(1),
                    &self.settings.holidays,
                );
                let said = with_note(
                    format!("no answer ({by}, {today}); call again on {again}"),
                    note.as_deref(),
                );
                self.note(who, &record, &said, Some(again)).await?;
                Ok(Outcome {
                    task_id: task_id.to_string(),
                    said,
                })
            }
            CallOutcome::Note { text } => {
                let text = required("text", text)?;
                let said = format!("note by {by} on {today}: {text}");
                self.note(who, &record, &said, None).await?;
                Ok(Outcome {
                    task_id: task_id.to_string(),
                    said,
                })
            }
        }
    }

    /// Closes an address-to-fix task (`hold-<customer>`): the customer's
    /// open holds end, closed by the person with their note; mail goes out
    /// again from the next sweep.
    pub async fn close_contact(
        &self,
        who: &Person,
        task_id: &str,
        note: &str,
    ) -> Result<Outcome, DeskError> {
        allow(who, Act::Call)?;
        let note = optional("note", Some(note))?;
        let Some(customer_id) = customer_of_hold_task(task_id) else {
            return Err(no_task(task_id));
        };
        let holds = self.ledger.contact_holds(customer_id).await?;
        let end = HoldEnd {
            on: self.today,
            how: HoldEnding::Closed {
                by: who.id.clone(),
                note: note.clone(),
            },
        };
        let mut ended = 0;
        for h in holds.iter().filter(|h| h.ended.is_none()) {
            if self
                .ledger
                .end_contact_hold(customer_id, &h.address, &end)
                .await?
            {
                ended += 1;
            }
        }
        if ended == 0 {
            return Err(DeskError::WrongStatus {
                id: task_id.to_string(),
                status: "already closed".to_string(),
                verb: "closed",
            });
        }
        Ok(Outcome {
            task_id: task_id.to_string(),
            said: with_note(
                format!(
                    "closed by {} on {}; mail goes out again from the next sweep",
                    who.id, self.today
                ),
                note.as_deref(),
            ),
        })
    }

    /// Decides the end of the ladder for some of a customer's open
    /// invoices: hand them to an agency, write them off, or keep working
    /// them — an event per invoice with who and why (agency and write-off
    /// stop dunning from the next sweep).
    pub async fn decide_account(
        &self,
        who: &Person,
        customer_id: &str,
        invoice_ids: &[String],
        decision: &AccountDecision,
    ) -> Result<Outcome, DeskError> {
        allow(who, Act::CloseAccount)?;
        let (kind, reason, what) = match decision {
            AccountDecision::Agency { agency, reason } => {
                let agency = required("agency", agency)?;
                (
                    EventKind::PlacedWithAgency {
                        agency: agency.clone(),
                    },
                    required("reason", reason)?,
                    format!("placed with agency `{agency}`"),
                )
            }
            AccountDecision::WriteOff { reason } => (
                EventKind::WrittenOff { amount: None },
                required("reason", reason)?,
                "written off".to_string(),
            ),
            AccountDecision::KeepWorking { reason } => (
                EventKind::KeptWorking,
                required("reason", reason)?,
                "kept working".to_string(),
            ),
        };
        if invoice_ids.is_empty() {
            return Err(DeskError::Invalid {
                field: "invoice_ids",
                reason: "choose at least one open invoice".to_string(),
            });
        }
        let book = self.ledger.customer_book(customer_id).await?;
        if !book.customers.contains_key(customer_id) {
            return Err(DeskError::NoCustomer {
                id: customer_id.to_string(),
            });
        }
        let mut events = Vec::with_capacity(invoice_ids.len());
        let mut numbers = Vec::with_capacity(invoice_ids.len());
        for id in invoice_ids {
            let Some(inv) = book
                .invoice(id)
                .filter(|i| i.customer_id == customer_id && book.is_open(i, self.today))
            else {
                return Err(DeskError::Invalid {
                    field: "invoice_ids",
                    reason: format!("`{id}` is not an open invoice of customer {customer_id}"),
                });
            };
            numbers.push(inv.number.clone());
            events.push(Event {
                event_id: event_id(&["desk", kind.name(), id, &self.today.to_string(), &who.id]),
                date: self.today,
                kind: kind.clone(),
                invoice_id: Some(id.clone()),
                action_id: None,
                message_id: None,
                by: Some(who.id.clone()),
                reason: Some(reason.clone()),
            });
        }
        let written = self.ledger.record_events(customer_id, &events).await?;
        if !written.iter().any(|w| *w) {
            return Err(DeskError::WrongStatus {
                id: customer_id.to_string(),
                status: format!("already {what} by {} today", who.id),
                verb: "decided again",
            });
        }
        Ok(Outcome {
            task_id: customer_id.to_string(),
            said: format!(
                "{} {what} by {} on {}: {reason}",
                numbers.join(", "),
                who.id,
                self.today
            ),
        })
    }

    /// Moves `record` to `next` if it is still awaiting approval.
    async fn decide(
        &self,
        who: &Person,
        record: ActionRecord,
        next: ActionStatus,
        said: &str,
        verb: &'static str,
    ) -> Result<Outcome, DeskError> {
        let from = record.status;
        let mut moved = record;
        moved.status = next;
        moved.decided_by = Some(who.id.clone());
        moved.decided_at = Some(self.today);
        moved.note = Some(said.to_string());
        if !self.ledger.move_action(&moved, &[from], self.today).await? {
            return Err(self
                .already(&moved.action_id, &moved.customer_id, verb)
                .await);
        }
        Ok(Outcome {
            task_id: moved.action_id.to_string(),
            said: said.to_string(),
        })
    }

    /// A call reached someone (or found the contact wrong): done.
    async fn call_done(
        &self,
        who: &Person,
        record: ActionRecord,
        said: &str,
    ) -> Result<(), DeskError> {
        let mut moved = record;
        moved.status = ActionStatus::Sent;
        moved.sent_on = Some(self.today);
        moved.decided_by = Some(who.id.clone());
        moved.decided_at = Some(self.today);
        moved.note = Some(said.to_string());
        if !self
            .ledger
            .move_action(&moved, &[ActionStatus::Planned], self.today)
            .await?
        {
            return Err(self
                .already(&moved.action_id, &moved.customer_id, "worked as a call")
                .await);
        }
        Ok(())
    }

    async fn note(
        &self,
        who: &Person,
        record: &ActionRecord,
        said: &str,
        call_again_on: Option<NaiveDate>,
    ) -> Result<(), DeskError> {
        let line = TrailNote {
            by: who.id.clone(),
            note: said.to_string(),
            call_again_on,
        };
        if !self
            .ledger
            .note_action(record, record.status, &line, self.today)
            .await?
        {
            return Err(self
                .already(&record.action_id, &record.customer_id, "noted")
                .await);
        }
        Ok(())
    }

    /// The refusal of a conditional write that found the action moved:
    /// what it is now, and who moved it.
    async fn already(&self, id: &str, customer_id: &str, verb: &'static str) -> DeskError {
        match self.ledger.customer_action(customer_id, id).await {
            Ok(Some(now)) => DeskError::WrongStatus {
                id: id.to_string(),
                status: match (&now.decided_by, now.decided_at) {
                    (Some(by), Some(on)) => format!(
                        "already {} (by {by} on {on})",
                        now.status.as_str().replace('_', " ")
                    ),
                    _ => format!("already {}", now.status.as_str().replace('_', " ")),
                },
                verb,
            },
            Ok(None) => no_task(id),
            Err(e) => DeskError::Ledger(e),
        }
    }

    fn event(
        &self,
        record: &ActionRecord,
        kind: EventKind,
        who: &Person,
        reason: Option<String>,
    ) -> Event {
        Event {
            event_id: event_id(&[
                "desk",
                kind.name(),
                &record.invoice_id,
                &record.action_id,
                &self.today.to_string(),
            ]),
            date: self.today,
            kind,
            invoice_id: Some(record.invoice_id.to_string()),
            action_id: Some(record.action_id.to_string()),
            message_id: None,
            by: Some(who.id.clone()),
            reason,
        }
    }
}

/// Refuses an act on an action that is not `status`.
fn expect(
    record: &ActionRecord,
    status: ActionStatus,
    verb: &'static str,
) -> Result<(), DeskError> {
    if record.status == status {
        return Ok(());
    }
    let now = record.status.as_str().replace('_', " ");
    Err(DeskError::WrongStatus {
        id: record.action_id.to_string(),
        status: match (&record.decided_by, record.decided_at) {
            (Some(by), Some(on)) => format!("{now} (by {by} on {on})"),
            _ => now,
        },
        verb,
    })
}

fn with_note(said: String, note: Option<&str>) -> String {
    match note {
        Some(n) => format!("{said}: {n}"),
        None => said,
    }
}

/// A stable event id from its parts: the same act on the same day is the
/// same event (recorded once).
fn event_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let hex: String = h
        .finalize()
        .iter()
        .take(10)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("desk-{hex}")
}

/// `day` plus `n` business days (weekends and `holidays` skipped).
pub fn add_business_days(day: NaiveDate, n: u32, holidays: &[NaiveDate]) -> NaiveDate {
    let mut d = day;
    let mut left = n;
    // At most a year of days off between two business days.
    for _ in 0..(n as usize + 1) * 366 {
        if left == 0 {
            break;
        }
        let Some(next) = d.checked_add_days(Days::new(1)) else {
            break;
        };
        d = next;
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&d) {
            left -= 1;
        }
    }
    d
}
