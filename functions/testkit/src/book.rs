//! Book builders, the test environment (policy, templates, pay links, a
//! clock that tests move), and the harnesses of the local adapters.

use super::Harness;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use collect_delivery::delivery::{Faults, RunError, RunReport, RunRequest, Sender, Sweeper};
use collect_delivery::ledger::memory::MemoryLedger;
use collect_delivery::ledger::{LeaseHolder, Scope, StoredMessage};
use collect_delivery::mailer::Mailer;
use collect_delivery::message::{PayLinks, Templates};
use collect_engine::domain::{ActionRecord, Customer, Event, EventKind, Invoice, Payment};
use collect_engine::sweep::{PriorLateRate, SweepOptions};
use collect_sqlite::store::{SqliteStore, Store, StoreError};
use policy_lang::{Diagnostic, Policy};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::sync::Mutex;

/// The policy the conformance suite runs: every kind of step, the holds,
/// a cap, business days.
pub const POLICY: &str = r#"
policy "conformance" effective 2027-01-01 currency USD
limits
  at most 1 email per customer per 2d
  at most 3 contacts per customer per 7d
  business days only
segment standard otherwise
hold dispute when invoice.disputed
hold promise when invoice.promised_until >= today
hold plan when invoice.plan_current
ladder standard
  due - 3d   email "friendly-reminder"
  due        email "urgent-notice"
  due + 7d   email "firm-notice"
  due + 14d  offer plan 3 installments every 30d down 10%
  due + 21d  call "collections"
  due + 30d  letter "legal-notice" requires approval
"#;

pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap_or_default()
}

pub fn money(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// A customer in UTC, writing in English, reachable at
/// `<id in lower case>@example.com`.
pub fn customer(id: &str) -> Customer {
    Customer {
        customer_id: id.to_string(),
        name: format!("Customer {id}"),
        email: format!("{}@example.com", id.to_lowercase()),
        phone: None,
        language: "en".to_string(),
        timezone: "UTC".to_string(),
        country: None,
        industry: None,
        annual_revenue: None,
        credit_score: None,
        credit_limit: None,
        tags: Vec::new(),
        do_not_contact: false,
        address: Default::default(),
    }
}

/// A customer in another time zone (quiet hours and business days are
/// the customer's).
pub fn customer_in(id: &str, timezone: &str) -> Customer {
    Customer {
        timezone: timezone.to_string(),
        ..customer(id)
    }
}

/// An invoice in USD, numbered `N-<id>`, issued 30 days before it is due.
pub fn invoice(id: &str, customer_id: &str, due: &str, amount: &str) -> Invoice {
    let due = day(due);
    Invoice {
        invoice_id: id.to_string(),
        customer_id: customer_id.to_string(),
        number: format!("N-{id}"),
        issue_date: due - chrono::Duration::days(30),
        due_date: due,
        amount: money(amount),
        currency: "USD".to_string(),
        disputed: false,
        dispute_opened_on: None,
    }
}

/// The payment of a whole invoice on a day.
pub fn payment(invoice: &Invoice, on: NaiveDate) -> Payment {
    Payment {
        amount: invoice.amount,
        ..payment_of(&invoice.invoice_id, on, "0")
    }
}

/// A payment of `amount` (all of an invoice, or part of it) on a day.
pub fn payment_of(invoice_id: &str, on: NaiveDate, amount: &str) -> Payment {
    Payment {
        payment_id: format!("P-{invoice_id}-{on}"),
        invoice_id: invoice_id.to_string(),
        paid_on: on,
        amount: money(amount),
    }
}

/// An invoice event (a dispute, a promise, a plan) on a day.
pub fn event(invoice_id: &str, on: NaiveDate, kind: EventKind) -> Event {
    Event {
        event_id: format!("E-{invoice_id}-{on}-{}", kind.name()),
        date: on,
        kind,
        invoice_id: Some(invoice_id.to_string()),
        action_id: None,
        message_id: None,
        by: None,
        reason: None,
    }
}

/// A record of a book as a test puts it in a store: what the ERP's
/// exports and events bring (`collect ingest` writes the same).
// A customer, with its postal address, is the largest; records are built
// one at a time in tests.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Customer(Customer),
    Invoice(Invoice),
    Payment(Payment),
    Event(Event),
}

impl From<Customer> for Record {
    fn from(c: Customer) -> Record {
        Record::Customer(c)
    }
}

impl From<Invoice> for Record {
    fn from(i: Invoice) -> Record {
        Record::Invoice(i)
    }
}

impl From<Payment> for Record {
    fn from(p: Payment) -> Record {
        Record::Payment(p)
    }
}

impl From<Event> for Record {
    fn from(e: Event) -> Record {
        Record::Event(e)
    }
}

impl Record {
    /// Writes the record into a local store: an upsert (a customer or
    /// invoice given again replaces the stored one), an event once.
    pub fn put_in(self, store: &mut impl Store) -> Result<(), StoreError> {
        match self {
            Record::Customer(c) => store.upsert_customers(&[c]).map(drop),
            Record::Invoice(i) => store.upsert_invoices(&[i]).map(drop),
            Record::Payment(p) => store.upsert_payments(&[p]).map(drop),
            Record::Event(e) => store.insert_events(&[e]).map(drop),
        }
    }
}

/// A wall clock the test moves (leases, the grace period).
#[derive(Debug)]
pub struct Clock(Mutex<DateTime<Utc>>);

impl Clock {
    pub fn at(day: NaiveDate) -> Clock {
        let noon = day.and_hms_opt(14, 0, 0).unwrap_or_default();
        Clock(Mutex::new(Utc.from_utc_datetime(&noon)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = t.checked_add_signed(by).unwrap_or(*t);
    }
}

/// Policy, templates and pay links, loaded once.
pub struct Env {
    pub policy: Policy,
    pub templates: Templates,
    pub pay_links: PayLinks,
}

/// The repository's `policy/` folder (the templates finance ops own).
pub fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policy")
}

impl Env {
    pub fn new() -> Env {
        Env::with_policy(POLICY)
    }

    pub fn with_policy(source: &str) -> Env {
        Env::with_policy_file(source, POLICY_FILE)
    }

    /// [`Env::with_policy`], the policy read as the file `file_name` (what
    /// every record's `rule` names, e.g. `scenario.policy:12`).
    pub fn with_policy_file(source: &str, file_name: &str) -> Env {
        let policy = compile_file(source, file_name).expect("the test policy compiles");
        let templates =
            Templates::load(&policy_dir().join("templates")).expect("policy/templates load");
        let pay_links = PayLinks::new(&[7u8; 32], "https://pay.example.com/{token}")
            .expect("a valid pay-link key");
        Env {
            policy,
            templates,
            pay_links,
        }
    }

    pub fn sweeper(&self) -> Sweeper<'_> {
        Sweeper {
            policy: &self.policy,
            scorer: &PriorLateRate,
            templates: &self.templates,
            pay_links: &self.pay_links,
            sender: Sender {
                company: "Example Supplies".to_string(),
                email: "ar@example.com".to_string(),
                reply_to: None,
                address: Vec::new(),
                country: None,
            },
            options: SweepOptions {
                git_revision: Some("conformance".to_string()),
                bundle_revision: Some("bundle-conformance".to_string()),
                ..SweepOptions::default()
            },
            pay_link_days: 30,
            grace: chrono::Duration::minutes(30),
            lease_ttl: chrono::Duration::minutes(10),
        }
    }

    /// One run of `day` as a new process (its own lease holder), killed at
    /// the first point `crash` names (with the message id, for points
    /// inside delivery).
    pub async fn run<H: Harness, M: Mailer>(
        &self,
        h: &H,
        mailer: &M,
        clock: &Clock,
        on: NaiveDate,
        crash: Faults<'_>,
    ) -> Result<RunReport, RunError> {
        let now = || clock.now();
        let mut holder = LeaseHolder::this_process(clock.now());
        holder.host = "test".to_string();
        let req = RunRequest {
            scope: Scope::All,
            day: on,
            dry_run: false,
            holder,
            now: &now,
            faults: crash,
            keep_records: usize::MAX,
        };
        let result = self.sweeper().run(h.ledger(), mailer, &req).await;
        // The next run is a new process, after a crash's lease has expired.
        clock.advance(chrono::Duration::minutes(11));
        result
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

/// A test policy that does not compile: every diagnostic the checker
/// gave, each on its own as `file:line:col: error[E…]: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the test policy does not compile: ")?;
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&d.headline())?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// The file name a test policy is read as, unless a test names another.
pub const POLICY_FILE: &str = "conformance.policy";

/// Compiles a policy text, with its diagnostics as the error.
pub fn compile(source: &str) -> Result<Policy, PolicyError> {
    compile_file(source, POLICY_FILE)
}

/// [`compile`], the text read as the file `file_name`.
pub fn compile_file(source: &str, file_name: &str) -> Result<Policy, PolicyError> {
    policy_lang::load(source, file_name, None)
        .map(|(p, _)| p)
        .map_err(|diagnostics| PolicyError { diagnostics })
}

/// The in-memory adapter under test.
#[derive(Default)]
pub struct MemoryHarness {
    pub ledger: MemoryLedger,
}

impl Harness for MemoryHarness {
    type L = MemoryLedger;
    fn name(&self) -> &str {
        "memory"
    }
    fn ledger(&self) -> &MemoryLedger {
        &self.ledger
    }
    async fn put_customer(&self, c: &Customer) {
        self.ledger.upsert_customer(c.clone());
    }
    async fn put_invoice(&self, i: &Invoice) {
        self.ledger.upsert_invoice(i.clone());
    }
    async fn put_payment(&self, p: &Payment) {
        self.ledger.upsert_payment(p.clone());
    }
    async fn put_event(&self, e: &Event) {
        self.ledger.insert_event(e.clone());
    }
    async fn actions(&self) -> Vec<ActionRecord> {
        self.ledger.actions()
    }
    async fn messages(&self) -> Vec<StoredMessage> {
        self.ledger.messages()
    }
}

/// The SQLite adapter under test (a private in-memory database, or a file).
pub struct SqliteHarness {
    pub store: Mutex<SqliteStore>,
    ledger: SqliteStore,
}

impl SqliteHarness {
    /// Two connections to one database file: one for the ERP's writes,
    /// one for the ledger (as `collect ingest` and `collect run` are two
    /// processes).
    pub fn open(
        path: &std::path::Path,
    ) -> Result<SqliteHarness, collect_sqlite::store::StoreError> {
        Ok(SqliteHarness {
            store: Mutex::new(SqliteStore::open(path)?),
            ledger: SqliteStore::open(path)?,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut SqliteStore) -> T) -> T {
        let mut s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }
}

impl Harness for SqliteHarness {
    type L = SqliteStore;
    fn name(&self) -> &str {
        "sqlite"
    }
    fn ledger(&self) -> &SqliteStore {
        &self.ledger
    }
    async fn put_customer(&self, c: &Customer) {
        self.with(|s| s.upsert_customers(std::slice::from_ref(c)))
            .expect("customer stored");
    }
    async fn put_invoice(&self, i: &Invoice) {
        self.with(|s| s.upsert_invoices(std::slice::from_ref(i)))
            .expect("invoice stored");
    }
    async fn put_payment(&self, p: &Payment) {
        self.with(|s| s.upsert_payments(std::slice::from_ref(p)))
            .expect("payment stored");
    }
    async fn put_event(&self, e: &Event) {
        self.with(|s| s.insert_events(std::slice::from_ref(e)))
            .expect("event stored");
    }
    async fn actions(&self) -> Vec<ActionRecord> {
        self.with(|s| s.actions()).expect("actions read")
    }
    async fn messages(&self) -> Vec<StoredMessage> {
        self.ledger.all_messages().expect("messages read")
    }
}
