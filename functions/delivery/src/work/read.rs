//! What the desk shows: the queue from the index of open work, a
//! customer's context, one task with what stands in the way of approving
//! it (the re-checks of `collect tasks approve`).

use super::{
    Act, CustomerView, Desk, DeskError, InvoiceLine, Person, Sort, TaskView, TimelineEntry,
    WorkEntry, WorkItem, WorkKind, WorkPage, WorkQuery, allow,
};
use crate::explain::PolicySource;
use crate::ledger::Ledger;
use chrono::NaiveDate;
use collect_engine::book::Book;
use collect_engine::contact::{customer_of_hold_task, hold_task_id};
use collect_engine::domain::{ActionRecord, ActionStatus, Channel, Customer};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::{BTreeMap, HashMap};

/// The most rows a page may have.
pub const MAX_PER_PAGE: usize = 500;

impl<L: Ledger + ?Sized, P: PolicySource + ?Sized> Desk<'_, L, P> {
    /// The open work the query matches, sorted (before paging), with the
    /// count per queue of everything open and visible today.
    pub(super) async fn matching(
        &self,
        q: &WorkQuery,
    ) -> Result<(Vec<WorkEntry>, Vec<(String, usize)>), DeskError> {
        let entries = self.ledger.open_work(None).await?;
        let today = self.today;
        // One row per task (a customer with two held addresses has one
        // address task).
        let mut seen = std::collections::HashSet::new();
        let visible: Vec<WorkEntry> = entries
            .into_iter()
            .filter(|e| e.call_again_on.is_none_or(|d| d <= today))
            .filter(|e| seen.insert(e.task_id.clone()))
            .collect();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for e in &visible {
            *counts.entry(e.queue.clone()).or_default() += 1;
        }
        let mut rows: Vec<WorkEntry> = visible
            .into_iter()
            .filter(|e| q.kind.is_none_or(|k| k == e.kind))
            .filter(|e| q.queue.as_ref().is_none_or(|x| *x == e.queue))
            .filter(|e| q.segment.as_ref().is_none_or(|x| *x == e.segment))
            .filter(|e| q.customer_id.as_ref().is_none_or(|x| *x == e.customer_id))
            .filter(|e| {
                q.min_balance
                    .is_none_or(|m| e.balance.unwrap_or(Decimal::ZERO) >= m)
            })
            .filter(|e| {
                q.min_days_overdue
                    .is_none_or(|m| days_overdue(e.due_date, today) >= m)
            })
            .collect();
        let priority = |e: &WorkEntry| {
            e.risk.unwrap_or(0.0) * e.balance.and_then(|b| b.to_f64()).unwrap_or(0.0)
        };
        match q.sort {
            Sort::Priority => rows.sort_by(|a, b| {
                priority(b)
                    .total_cmp(&priority(a))
                    .then_with(|| a.task_id.cmp(&b.task_id))
            }),
            Sort::Balance => rows.sort_by(|a, b| {
                b.balance
                    .cmp(&a.balance)
                    .then_with(|| a.task_id.cmp(&b.task_id))
            }),
            Sort::DaysOverdue => rows.sort_by(|a, b| {
                days_overdue(b.due_date, today)
                    .cmp(&days_overdue(a.due_date, today))
                    .then_with(|| a.task_id.cmp(&b.task_id))
            }),
            Sort::Age => rows.sort_by(|a, b| {
                a.decided_on
                    .cmp(&b.decided_on)
                    .then_with(|| a.task_id.cmp(&b.task_id))
            }),
        }
        Ok((rows, counts.into_iter().collect()))
    }

    /// One page of open work: filtered, sorted (risk × balance, largest
    /// first, by default), with a count per queue. Reads the index of open
    /// work and the books of the page's customers only.
    pub async fn queue(&self, who: &Person, q: &WorkQuery) -> Result<WorkPage, DeskError> {
        allow(who, Act::Read)?;
        if q.per_page == 0 || q.per_page > MAX_PER_PAGE {
            return Err(DeskError::Invalid {
                field: "per_page",
                reason: format!("must be between 1 and {MAX_PER_PAGE}"),
            });
        }
        if q.page == 0 {
            return Err(DeskError::Invalid {
                field: "page",
                reason: "pages are numbered from 1".to_string(),
            });
        }
        let (rows, counts) = self.matching(q).await?;
        let total = rows.len();
        let start = (q.page - 1).saturating_mul(q.per_page);
        let page: Vec<WorkEntry> = rows.into_iter().skip(start).take(q.per_page).collect();
        let ids: Vec<&str> = page.iter().map(|e| e.customer_id.as_str()).collect();
        let customers = self.ledger.customers(&ids).await?;
        // Rows whose index entry lacks the balance (an address to fix: what
        // the customer owes in all) read their customer's book.
        let mut books = HashMap::new();
        for e in &page {
            if (e.balance.is_none() || e.kind == WorkKind::FixContact)
                && !books.contains_key(&e.customer_id)
            {
                let book = self.ledger.customer_book(&e.customer_id).await?;
                books.insert(e.customer_id.clone(), book);
            }
        }
        let items = page
            .into_iter()
            .map(|e| {
                let customer = customers.get(&e.customer_id);
                let book = books.get(&e.customer_id);
                self.item(e, customer, book)
            })
            .collect();
        Ok(WorkPage {
            items,
            total,
            counts,
            page: q.page,
            per_page: q.per_page,
        })
    }

    fn item(&self, e: WorkEntry, customer: Option<&Customer>, book: Option<&Book>) -> WorkItem {
        let invoice = book.and_then(|b| e.invoice_id.as_deref().and_then(|i| b.invoice(i)));
        let (balance, currency) = match (e.kind, book) {
            // An address to fix: what the customer owes in all.
            (WorkKind::FixContact, Some(b)) => open_total(b, &e.customer_id, self.today),
            _ => (
                e.balance
                    .or_else(|| Some(book?.balance(invoice?, self.today)))
                    .unwrap_or(Decimal::ZERO),
                e.currency
                    .clone()
                    .or_else(|| invoice.map(|i| i.currency.clone()))
                    .unwrap_or_default(),
            ),
        };
        let due = invoice.map(|i| i.due_date).or(e.due_date);
        WorkItem {
            task_id: e.task_id,
            kind: e.kind,
            queue: e.queue,
            customer_name: customer.map(|c| c.name.clone()).unwrap_or_default(),
            language: customer.map(|c| c.language.clone()).unwrap_or_default(),
            customer_id: e.customer_id,
            invoice_ids: e.invoice_id.into_iter().collect(),
            balance,
            currency,
            days_overdue: days_overdue(due, self.today),
            risk: e.risk,
            segment: e.segment,
            label: e.label,
            decided_on: e.decided_on,
            age_days: (self.today - e.decided_on).num_days().max(0),
            call_again_on: e.call_again_on,
        }
    }

    /// A customer's context: open invoices with live balances, every
    /// action with its trail (newest first), events, payments, holds.
    pub async fn customer(
        &self,
        who: &Person,
        customer_id: &str,
    ) -> Result<CustomerView, DeskError> {
        allow(who, Act::Read)?;
        let book = self.ledger.customer_book(customer_id).await?;
        let Some(customer) = book.customers.get(customer_id).cloned() else {
            return Err(DeskError::NoCustomer {
                id: customer_id.to_string(),
            });
        };
        let today = self.today;
        let invoices = book.invoices_of(customer_id);
        let open_invoices = invoices
            .iter()
            .filter(|i| book.is_open(i, today))
            .map(|i| InvoiceLine {
                invoice: i.clone(),
                balance: book.balance(i, today),
                days_overdue: (today - i.due_date).num_days().max(0),
                disputed: book.dispute_open(i, today).0,
                promised_until: book.promised_until(i, today),
            })
            .collect();
        let mut actions: Vec<ActionRecord> = invoices
            .iter()
            .flat_map(|i| book.actions_of(&i.invoice_id).iter().cloned())
            .collect();
        actions.sort_by(|a, b| (b.decided_on, &b.action_id).cmp(&(a.decided_on, &a.action_id)));
        let mut timeline = Vec::with_capacity(actions.len());
        for action in actions {
            let trail = self.ledger.trail(&action).await?;
            timeline.push(TimelineEntry { action, trail });
        }
        let mut events: Vec<_> = invoices
            .iter()
            .flat_map(|i| {
                book.events
                    .get(&i.invoice_id)
                    .into_iter()
                    .flatten()
                    .cloned()
            })
            .collect();
        events.sort_by(|a, b| (b.date, &b.event_id).cmp(&(a.date, &a.event_id)));
        let mut payments: Vec<_> = invoices
            .iter()
            .flat_map(|i| {
                book.payments
                    .get(&i.invoice_id)
                    .into_iter()
                    .flatten()
                    .cloned()
            })
            .collect();
        payments.sort_by(|a, b| (b.paid_on, &b.payment_id).cmp(&(a.paid_on, &a.payment_id)));
        let holds = self.ledger.contact_holds(customer_id).await?;
        let end_of_ladder = match self.policy.policy_for(None).await {
            Ok(in_force) => invoices
                .iter()
                .filter_map(|i| {
                    collect_engine::ladder::end_of_ladder(&book, &in_force.policy, i, today)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        Ok(CustomerView {
            customer,
            end_of_ladder,
            open_invoices,
            timeline,
            events,
            payments,
            holds,
        })
    }

    /// One task: `hold-<customer>` (an address to fix) or an action of
    /// the customer, with what stands in the way of approving it now.
    pub async fn task(
        &self,
        who: &Person,
        customer_id: &str,
        task_id: &str,
    ) -> Result<TaskView, DeskError> {
        allow(who, Act::Read)?;
        let today = self.today;
        if let Some(holder) = customer_of_hold_task(task_id) {
            let holds = self.ledger.contact_holds(holder).await?;
            let Some(hold) = holds.into_iter().find(|h| h.ended.is_none()) else {
                return Err(no_task(task_id));
            };
            let book = self.ledger.customer_book(holder).await?;
            let (balance, currency) = open_total(&book, holder, today);
            return Ok(TaskView {
                task_id: hold_task_id(holder),
                kind: WorkKind::FixContact,
                action: None,
                trail: vec![],
                hold: Some(hold),
                customer: book.customers.get(holder).cloned(),
                balance,
                currency,
                days_overdue: 0,
                blockers: vec![],
                warnings: vec![],
                may: may(who, &[Act::Read, Act::Call]),
                reopenable: false,
            });
        }
        let record = self.record(customer_id, task_id).await?;
        let book = self.ledger.customer_book(customer_id).await?;
        let trail = self.ledger.trail(&record).await?;
        let invoice = book.invoice(&record.invoice_id);
        let (mut blockers, warnings) = checks(&book, &record, today);
        let kind = kind_of(&record);
        if record.status == ActionStatus::AwaitingApproval {
            match self.policy_holds(&book, &record).await {
                Ok(holds) => blockers.extend(holds),
                Err(e) => blockers.push(e),
            }
        }
        let acts: &[Act] = match kind {
            WorkKind::Approval => &[Act::Read, Act::Approve],
            WorkKind::Call => &[Act::Read, Act::Call],
            _ => &[Act::Read],
        };
        Ok(TaskView {
            task_id: record.action_id.to_string(),
            kind,
            reopenable: reopenable(&record, today),
            trail,
            hold: None,
            customer: book.customers.get(customer_id).cloned(),
            balance: invoice.map_or(Decimal::ZERO, |i| book.balance(i, today)),
            currency: invoice.map(|i| i.currency.clone()).unwrap_or_default(),
            days_overdue: days_overdue(invoice.map(|i| i.due_date), today),
            blockers,
            warnings,
            may: may(who, acts),
            action: Some(record),
        })
    }

    /// The action `task_id` of the customer, or [`DeskError::NoTask`].
    pub(super) async fn record(
        &self,
        customer_id: &str,
        task_id: &str,
    ) -> Result<ActionRecord, DeskError> {
        self.ledger
            .customer_action(customer_id, task_id)
            .await?
            .ok_or_else(|| no_task(task_id))
    }

    /// The policy's holds that apply to the action's invoice today, as the
    /// sweep would evaluate them (with the risk the action recorded); the
    /// error, in words, when the policy cannot be had.
    pub(super) async fn policy_holds(
        &self,
        book: &Book,
        record: &ActionRecord,
    ) -> Result<Vec<String>, String> {
        let in_force = self.policy.policy_for(Some(record)).await.map_err(|e| {
            format!("the policy's holds could not be re-checked ({e}); try again or reject it")
        })?;
        let (Some(invoice), Some(customer)) = (
            book.invoice(&record.invoice_id),
            book.customers.get(record.customer_id.as_str()),
        ) else {
            return Ok(vec![]);
        };
        let day = self.today;
        let stats = book.customer_stats(&customer.customer_id, day);
        let facts = collect_engine::sweep::facts(book, customer, invoice, &stats, record.risk, day);
        let decision = in_force.policy.decide(&facts);
        Ok(policy_lang::eval::bits(decision.holds)
            .filter_map(|i| in_force.policy.holds.get(i))
            .map(|h| format!("the policy's hold `{}` applies on {day}", h.name))
            .collect())
    }
}

pub(super) fn no_task(id: &str) -> DeskError {
    DeskError::NoTask { id: id.to_string() }
}

/// The kind of work an action is (or was, once decided).
pub(super) fn kind_of(a: &ActionRecord) -> WorkKind {
    if a.channel == Channel::Call {
        WorkKind::Call
    } else {
        WorkKind::Approval
    }
}

/// Whether a decision on `a` was taken by a person on `today` and may
/// still be undone: approved (not yet sent), rejected, or a call done.
pub(super) fn reopenable(a: &ActionRecord, today: NaiveDate) -> bool {
    let by_person_today = a.decided_by.is_some() && a.decided_at == Some(today);
    by_person_today
        && match a.status {
            ActionStatus::Approved | ActionStatus::Rejected => a.requires_approval,
            ActionStatus::Sent => a.channel == Channel::Call,
            _ => false,
        }
}

fn may(who: &Person, acts: &[Act]) -> Vec<Act> {
    acts.iter().copied().filter(|a| who.role.may(*a)).collect()
}

fn days_overdue(due: Option<NaiveDate>, today: NaiveDate) -> i64 {
    due.map_or(0, |d| (today - d).num_days().max(0))
}

/// What the customer owes in all today (in the currency of their first
/// open invoice).
fn open_total(book: &Book, customer_id: &str, today: NaiveDate) -> (Decimal, String) {
    let open: Vec<_> = book
        .invoices_of(customer_id)
        .iter()
        .filter(|i| book.is_open(i, today))
        .collect();
    let currency = open.first().map(|i| i.currency.clone()).unwrap_or_default();
    let total = open
        .iter()
        .filter(|i| i.currency == currency)
        .map(|i| book.balance(i, today))
        .fold(Decimal::ZERO, |a, b| a.saturating_add(b));
    (total, currency)
}

/// What stands in the way of approving `record` on `day` (settled,
/// disputed, promised, do-not-contact, the address held, an end of the
/// ladder decided), and what to know.
pub(super) fn checks(
    book: &Book,
    record: &ActionRecord,
    day: NaiveDate,
) -> (Vec<String>, Vec<String>) {
    let invoice = book.invoice(&record.invoice_id);
    let customer = book.customers.get(record.customer_id.as_str());
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    match invoice {
        Some(inv) => {
            if book.balance(inv, day) <= Decimal::ZERO {
                blockers.push(format!(
                    "invoice {} is settled as of {day}: nothing is owed any more",
                    inv.number
                ));
            }
            let (disputed, since) = book.dispute_open(inv, day);
            if disputed {
                blockers.push(format!(
                    "invoice {} is disputed{}: a dispute holds every reminder",
                    inv.number,
                    since.map(|d| format!(" since {d}")).unwrap_or_default()
                ));
            }
            if let Some(until) = book.promised_until(inv, day) {
                blockers.push(format!(
                    "the customer promised to pay invoice {} by {until}",
                    inv.number
                ));
            }
            if let Some(stop) = collect_engine::ladder::stop(book, inv, day) {
                blockers.push(stop.why());
            }
        }
        None => blockers.push(format!(
            "invoice {} is not in the book any more",
            record.invoice_id
        )),
    }
    if let Some(c) = customer {
        if c.do_not_contact {
            blockers.push("the customer asked not to be contacted (do_not_contact)".to_string());
        }
        if record.channel != Channel::Call
            && let Some(hold) = book.contact_hold(c)
        {
            blockers.push(format!(
                "the customer's address is held: {}; fix it first",
                hold.describe()
            ));
        }
    }
    let age = (day - record.decided_on).num_days();
    if age > 7 {
        warnings.push(format!(
            "decided on {} ({age} days ago): check that it still applies",
            record.decided_on
        ));
    }
    (blockers, warnings)
}
