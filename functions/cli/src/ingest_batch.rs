//! Loading a folder of ERP exports into the home: customers.csv,
//! invoices.csv, payments.csv and events.jsonl, each row checked, each
//! reference resolved against the batch or what is stored, the refused
//! rows kept in `<home>/rejects.csv` with file, line, column and reason.

use crate::home::{Home, HomeError};
use collect_engine::domain::{Customer, Event, Invoice, Payment};
use collect_engine::ingest::{self, Incoming, Patch, Reject};
use collect_sqlite::store::{Store, StoreError, Upserted};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// An ingest that loaded nothing, or whose rejects could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(
        "{} holds none of customers.csv, invoices.csv, payments.csv or events.jsonl",
        dir.display()
    )]
    NothingToLoad { dir: PathBuf },
    #[error("cannot write {}", path.display())]
    Rejects {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Holds(#[from] crate::contact_holds::HoldError),
}

/// What an ingest loaded and what it refused.
pub struct Ingested {
    pub customers: Upserted,
    pub invoices: Upserted,
    pub payments: Upserted,
    /// Events not seen before.
    pub events_new: usize,
    /// Addresses held by the events' bounces and complaints (new holds).
    pub held: Vec<collect_engine::contact::ContactHold>,
    /// Rows refused, in file and line order.
    pub rejects: Vec<Reject>,
    /// Rows loaded that look wrong (a `dispute_closed` with no open
    /// dispute), in file and line order: said, not refused.
    pub warnings: Vec<Reject>,
    /// Files refused as a whole (unreadable, not UTF-8, a header without a
    /// required column), as messages.
    pub file_errors: Vec<String>,
    /// `<home>/rejects.csv`, rewritten by every ingest.
    pub rejects_path: PathBuf,
    /// Rows in it: the files refused as a whole, then the rows.
    pub rejects_written: usize,
}

/// Reads one file of the data contract if `dir` has it. A problem with the
/// file as a whole (unreadable, not UTF-8, a header without a required
/// column) is recorded in `file_errors` and the other files still load.
fn read_export<T>(
    dir: &Path,
    name: &str,
    parse: impl FnOnce(std::fs::File, &str) -> Result<ingest::Parsed<T>, ingest::IngestError>,
    found: &mut usize,
    file_errors: &mut Vec<ingest::IngestError>,
) -> Option<(ingest::Parsed<T>, String)> {
    let path = dir.join(name);
    if !path.exists() {
        return None;
    }
    *found += 1;
    let label = path.display().to_string();
    let parsed = std::fs::File::open(&path)
        .map_err(|source| ingest::IngestError::Read {
            file: label.clone(),
            source,
        })
        .and_then(|file| parse(file, &label));
    match parsed {
        Ok(parsed) => Some((parsed, label)),
        Err(e) => {
            file_errors.push(e);
            None
        }
    }
}

/// A record with the file and line it came from.
struct Sourced<T> {
    record: T,
    file: String,
    line: u64,
}

fn with_origin<T>(parsed: ingest::Parsed<T>, file: &str) -> Vec<Sourced<T>> {
    parsed
        .records
        .into_iter()
        .zip(parsed.lines)
        .map(|(record, line)| Sourced {
            record,
            file: file.to_owned(),
            line,
        })
        .collect()
}

/// Why a record naming an unknown customer or invoice is refused, with the
/// fix for where it came from.
fn unknown_reason(kind: &str, file: &str) -> String {
    if file.ends_with(".jsonl") {
        format!("no {kind} with this id; send its {kind}_upserted event first")
    } else {
        format!("no {kind} with this id; add it to {kind}s.csv")
    }
}

/// Loads the CSV files (and `events.jsonl`) found in `dir`.
///
/// Customers and invoices are merged with what is stored (a column the
/// file lacks keeps its stored value); references must resolve against
/// this batch or the store; payments are checked against their invoices.
/// A file that cannot be read as a whole is reported and the other files
/// still load; `rejects.csv` is rewritten every time.
pub fn ingest(home: &Home, dir: &Path) -> Result<Ingested, BatchError> {
    let mut store = home.store()?;
    let mut rejects: Vec<Reject> = Vec::new();
    let mut file_errors: Vec<ingest::IngestError> = Vec::new();
    let mut found = 0;
    let mut customers: Vec<Sourced<Patch<Customer>>> = Vec::new();
    let mut invoices: Vec<Sourced<Patch<Invoice>>> = Vec::new();
    let mut payments: Vec<Sourced<Payment>> = Vec::new();
    let mut events: Vec<Sourced<Event>> = Vec::new();
    if let Some((mut p, file)) = read_export(
        dir,
        "customers.csv",
        ingest::customers,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        customers.extend(with_origin(p, &file));
    }
    if let Some((mut p, file)) = read_export(
        dir,
        "invoices.csv",
        ingest::invoices,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        invoices.extend(with_origin(p, &file));
    }
    if let Some((mut p, file)) = read_export(
        dir,
        "payments.csv",
        ingest::payments,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        payments.extend(with_origin(p, &file));
    }
    if let Some((mut p, file)) = read_export(
        dir,
        "events.jsonl",
        ingest::events,
        &mut found,
        &mut file_errors,
    ) {
        rejects.append(&mut p.rejects);
        for Sourced { record, file, line } in with_origin(p, &file) {
            match record {
                Incoming::Customer(record) => customers.push(Sourced { record, file, line }),
                Incoming::Invoice(record) => invoices.push(Sourced { record, file, line }),
                Incoming::Payment(record) => payments.push(Sourced { record, file, line }),
                Incoming::Event(record) => events.push(Sourced { record, file, line }),
            }
        }
    }
    if found == 0 {
        return Err(BatchError::NothingToLoad {
            dir: dir.to_path_buf(),
        });
    }

    // References must resolve, against this batch or what is already stored.
    let book = store.load_book()?;
    let known_customers: HashSet<String> = book
        .customers
        .keys()
        .cloned()
        .chain(
            customers
                .iter()
                .map(|c| c.record.record.customer_id.clone()),
        )
        .collect();
    let mut kept_invoices = Vec::new();
    for inv in invoices {
        let customer_id = &inv.record.record.customer_id;
        if known_customers.contains(customer_id) {
            kept_invoices.push(inv.record);
        } else {
            rejects.push(Reject {
                reason: unknown_reason("customer", &inv.file),
                file: inv.file,
                line: inv.line,
                column: "customer_id".to_string(),
                value: customer_id.clone(),
            });
        }
    }
    // The invoices payments are checked against: the stored ones, replaced
    // by this batch's.
    let mut known_invoices: std::collections::HashMap<&str, &Invoice> = book
        .invoices
        .iter()
        .map(|i| (i.invoice_id.as_str(), i))
        .collect();
    for patch in &kept_invoices {
        known_invoices.insert(patch.record.invoice_id.as_str(), &patch.record);
    }
    let mut kept_payments = Vec::new();
    for p in payments {
        match known_invoices.get(p.record.invoice_id.as_str()) {
            Some(invoice) => {
                let refusals = ingest::check_payment(&p.record, invoice);
                if refusals.is_empty() {
                    kept_payments.push(p.record);
                } else {
                    rejects.extend(refusals.into_iter().map(|r| r.at(&p.file, p.line)));
                }
            }
            None => rejects.push(Reject {
                reason: unknown_reason("invoice", &p.file),
                file: p.file,
                line: p.line,
                column: "invoice_id".to_string(),
                value: p.record.invoice_id.clone(),
            }),
        }
    }
    let mut kept_events: Vec<Event> = Vec::new();
    let mut warnings = Vec::new();
    for e in events {
        match &e.record.invoice_id {
            Some(inv) if !known_invoices.contains_key(inv.as_str()) => rejects.push(Reject {
                file: e.file,
                line: e.line,
                column: "invoice_id".to_string(),
                value: inv.clone(),
                reason: "no invoice with this id".to_string(),
            }),
            invoice_id => {
                if let Some(invoice) = invoice_id.as_deref().and_then(|id| known_invoices.get(id)) {
                    let earlier: Vec<&Event> = book
                        .events
                        .get(&invoice.invoice_id)
                        .into_iter()
                        .flatten()
                        .chain(kept_events.iter().filter(|k| k.invoice_id == *invoice_id))
                        .collect();
                    if let Some(reason) = ingest::check_dispute_closed(invoice, &earlier, &e.record)
                    {
                        warnings.push(Reject {
                            file: e.file.clone(),
                            line: e.line,
                            column: "type".to_string(),
                            value: "dispute_closed".to_string(),
                            reason,
                        });
                    }
                }
                kept_events.push(e.record);
            }
        }
    }
    rejects.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let customers: Vec<Patch<Customer>> = customers.into_iter().map(|c| c.record).collect();
    let c = store.merge_customers(&customers)?;
    let i = store.merge_invoices(&kept_invoices)?;
    let p = store.upsert_payments(&kept_payments)?;
    let e = store.insert_events(&kept_events)?;
    // Bounces and complaints hold the customer's address: a task each.
    let held = crate::contact_holds::from_events(&store, &kept_events)?;
    // Rewritten on every ingest (header only when nothing was refused), so
    // it never shows the rejects of an earlier one; files refused as a
    // whole are listed first.
    let rejects_path = home.dir.join("rejects.csv");
    let rows: Vec<Reject> = file_errors
        .iter()
        .map(ingest::IngestError::reject)
        .chain(rejects.iter().cloned())
        .collect();
    ingest::write_rejects(&rejects_path, &rows).map_err(|source| BatchError::Rejects {
        path: rejects_path.clone(),
        source,
    })?;
    Ok(Ingested {
        customers: c,
        invoices: i,
        payments: p,
        events_new: e,
        held,
        rejects,
        warnings,
        file_errors: file_errors.iter().map(ToString::to_string).collect(),
        rejects_path,
        rejects_written: rows.len(),
    })
}
