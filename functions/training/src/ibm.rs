//! The reproducible evaluation on IBM's public "Late Payment Histories"
//! sample (`WA_Fn-UseC_-Accounts-Receivable.csv`: 2,466 invoices of 100
//! customers, 2012–2013), read from `../shared/data` and never copied.
//!
//! The converter maps it to the data contract: `customerID` → a customer
//! (country from `countryCode`), each row → an invoice (`InvoiceDate`,
//! `DueDate`, `InvoiceAmount`, currency `USD`), and `SettledDate` → one
//! payment of the full amount that day. Left out on purpose:
//! - `Disputed`: the export does not say when the dispute was opened, and the
//!   data contract would count an undated dispute from the issue date, which
//!   would leak an outcome-related fact into the features;
//! - `DaysToSettle` and `DaysLate`: they are the outcome;
//! - `PaperlessDate` and `PaperlessBill`: the data contract has no field for them.
//!
//! The walk-forward evaluation retrains on the first day of every month on
//! what was known then (labels known before that day) and scores every
//! invoice still open 14 days before its due date whose prediction day falls
//! in that month. With an export folder, each month's training and test
//! matrices (the exact rows and columns the Rust models see, after
//! imputation) go to CSV files, so another library can be compared on the
//! same rows (`bench/model_eval.sh`).

use crate::train::{TrainConfig, train};
use chrono::{Datelike, Days, Months, NaiveDate};
use collect_engine::book::Book;
use collect_engine::domain::{Customer, Invoice, Payment};
use collect_model::artifact::{Estimator, Model};
use collect_model::dataset::{self, Row, SplitConfig};
use collect_model::features::{self, FeatureSchema};
use collect_model::metrics::Metrics;
use collect_model::{ModelError, ModelScorer};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

/// Where the sample sits relative to the repository root.
pub const DEFAULT_PATH: &str = "../shared/data/WA_Fn-UseC_-Accounts-Receivable.csv";

/// The sample in the data contract's records.
#[derive(Debug, Clone, Default)]
pub struct IbmData {
    pub customers: Vec<Customer>,
    pub invoices: Vec<Invoice>,
    pub payments: Vec<Payment>,
}

pub fn read(path: &Path) -> Result<IbmData, ModelError> {
    let file = std::fs::File::open(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(file, &path.display().to_string())
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%m/%d/%Y").ok()
}

pub fn parse(reader: impl Read, label: &str) -> Result<IbmData, ModelError> {
    let mut rdr = csv::Reader::from_reader(reader);
    let err = |line: u64, reason: String| ModelError::Data {
        path: label.to_string(),
        line,
        reason,
    };
    let headers = rdr.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let col = |name: &str| -> Result<usize, ModelError> {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| err(1, format!("no column `{name}`")))
    };
    let (c_country, c_customer, c_number, c_issue, c_due, c_amount, c_settled) = (
        col("countryCode")?,
        col("customerID")?,
        col("invoiceNumber")?,
        col("InvoiceDate")?,
        col("DueDate")?,
        col("InvoiceAmount")?,
        col("SettledDate")?,
    );
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    let mut out = IbmData::default();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| err(line, e.to_string()))?;
        let get = |c: usize| rec.get(c).unwrap_or("").trim();
        let customer_id = get(c_customer).to_string();
        let number = get(c_number).to_string();
        let field_date = |c: usize, name: &str| {
            date(get(c)).ok_or_else(|| err(line, format!("`{name}` is not a M/D/YYYY date")))
        };
        let issue = field_date(c_issue, "InvoiceDate")?;
        let due = field_date(c_due, "DueDate")?;
        let amount = Decimal::from_str(get(c_amount))
            .map_err(|_| err(line, "`InvoiceAmount` is not a number".to_string()))?;
        if customer_id.is_empty() || number.is_empty() {
            return Err(err(
                line,
                "customerID and invoiceNumber are required".to_string(),
            ));
        }
        customers
            .entry(customer_id.clone())
            .or_insert_with(|| Customer {
                customer_id: customer_id.clone(),
                name: format!("Customer {customer_id}"),
                email: format!("ar-{}@customers.example", customer_id.to_lowercase()),
                phone: None,
                language: "en".to_string(),
                timezone: "UTC".to_string(),
                country: Some(get(c_country).to_string()).filter(|c| !c.is_empty()),
                industry: None,
                annual_revenue: None,
                credit_score: None,
                credit_limit: None,
                tags: Vec::new(),
                do_not_contact: false,
                address: Default::default(),
            });
        if let Some(settled) = date(get(c_settled)) {
            out.payments.push(Payment {
                payment_id: format!("P-{number}"),
                invoice_id: number.clone(),
                paid_on: settled,
                amount,
            });
        }
        out.invoices.push(Invoice {
            invoice_id: number.clone(),
            customer_id,
            number,
            issue_date: issue,
            due_date: due,
            amount,
            currency: "USD".to_string(),
            disputed: false,
            dispute_opened_on: None,
        });
    }
    out.customers = customers.into_values().collect();
    Ok(out)
}

impl IbmData {
    pub fn book(&self) -> Book {
        Book::new(
            self.customers.clone(),
            self.invoices.clone(),
            self.payments.clone(),
            Vec::new(),
            Vec::new(),
        )
    }

    /// Writes `customers.csv`, `invoices.csv` and `payments.csv` (the data
    /// contract) to `dir`, ready for `collect ingest`.
    pub fn write_contract(&self, dir: &Path) -> Result<(), ModelError> {
        let io = |path: &Path, e: std::io::Error| ModelError::Io {
            path: path.display().to_string(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let write = |name: &str, header: &[&str], rows: Vec<Vec<String>>| {
            let path = dir.join(name);
            let mut w = csv::Writer::from_path(&path)
                .map_err(|e| io(&path, std::io::Error::other(e.to_string())))?;
            let mut put = |r: &[String]| {
                w.write_record(r)
                    .map_err(|e| io(&path, std::io::Error::other(e.to_string())))
            };
            put(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
            for r in &rows {
                put(r)?;
            }
            w.flush().map_err(|e| io(&path, e))
        };
        write(
            "customers.csv",
            &[
                "customer_id",
                "name",
                "email",
                "phone",
                "language",
                "timezone",
                "country",
                "industry",
                "annual_revenue",
                "credit_score",
                "credit_limit",
                "tags",
                "do_not_contact",
            ],
            self.customers
                .iter()
                .map(|c| {
                    vec![
                        c.customer_id.clone(),
                        c.name.clone(),
                        c.email.clone(),
                        String::new(),
                        c.language.clone(),
                        c.timezone.clone(),
                        c.country.clone().unwrap_or_default(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        "false".to_string(),
                    ]
                })
                .collect(),
        )?;
        write(
            "invoices.csv",
            &[
                "invoice_id",
                "customer_id",
                "number",
                "issue_date",
                "due_date",
                "amount",
                "currency",
                "disputed",
                "dispute_opened_on",
            ],
            self.invoices
                .iter()
                .map(|i| {
                    vec![
                        i.invoice_id.clone(),
                        i.customer_id.clone(),
                        i.number.clone(),
                        i.issue_date.to_string(),
                        i.due_date.to_string(),
                        i.amount.to_string(),
                        i.currency.clone(),
                        "false".to_string(),
                        String::new(),
                    ]
                })
                .collect(),
        )?;
        write(
            "payments.csv",
            &["payment_id", "invoice_id", "paid_on", "amount"],
            self.payments
                .iter()
                .map(|p| {
                    vec![
                        p.payment_id.clone(),
                        p.invoice_id.clone(),
                        p.paid_on.to_string(),
                        p.amount.to_string(),
                    ]
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone)]
pub struct WalkForwardConfig {
    /// The first month scored (its first day is the first retraining date).
    pub first_month: NaiveDate,
    /// The last month scored; `None` runs to the last prediction day.
    pub last_month: Option<NaiveDate>,
    /// Scoring happens this many days before the due date.
    pub days_before_due: u32,
    pub train: TrainConfig,
    /// Where to write each month's matrices and the predictions.
    pub export_dir: Option<PathBuf>,
    /// Only invoices of these customers (all when `None`): for fast tests.
    pub customers: Option<Vec<String>>,
}

impl Default for WalkForwardConfig {
    fn default() -> Self {
        WalkForwardConfig {
            first_month: NaiveDate::from_ymd_opt(2012, 7, 1).unwrap_or_default(),
            last_month: None,
            days_before_due: 14,
            train: TrainConfig {
                split: SplitConfig {
                    valid_fraction: 0.25,
                    test_fraction: 0.0,
                },
                ..TrainConfig::default()
            },
            export_dir: None,
            customers: None,
        }
    }
}

/// One month of the walk-forward run.
#[derive(Debug, Clone, Serialize)]
pub struct MonthResult {
    pub month: NaiveDate,
    pub train_rows: usize,
    pub test_rows: usize,
    pub chosen: String,
    /// The whole `train` call: every candidate, selection and calibration.
    pub train_seconds: f64,
    pub fit_seconds: Vec<(String, f64)>,
}

/// One scored invoice.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub month: NaiveDate,
    pub invoice_id: String,
    pub day: NaiveDate,
    pub late: bool,
    pub chosen: f64,
    pub logistic_regression: f64,
    pub random_forest: Option<f64>,
    pub baseline: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Mean time of one fit on a month's training + validation rows (the
    /// rows scikit-learn fits on), in seconds.
    pub fit_seconds_lr: f64,
    pub fit_seconds_rf: f64,
    pub train_seconds_total: f64,
    /// Scoring prepared rows (the exported matrix; every month's test rows in
    /// one batch, the last month's models), per 1,000 invoices.
    pub score_ms_per_1000_lr: f64,
    pub score_ms_per_1000_rf: f64,
    /// Computing the features from the book and scoring with the chosen
    /// model, per 1,000 invoices.
    pub features_and_score_ms_per_1000: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WalkForward {
    pub months: Vec<MonthResult>,
    pub predictions: Vec<Prediction>,
    pub chosen: Metrics,
    pub logistic_regression: Metrics,
    pub random_forest: Option<Metrics>,
    pub baseline: Metrics,
    pub timing: Timing,
    pub schema: FeatureSchema,
    pub train_config: TrainConfig,
}

fn of_kind(models: &[Model], lr: bool) -> Option<&Model> {
    models
        .iter()
        .find(|m| matches!(m.content.estimator, Estimator::LogisticRegression { .. }) == lr)
}

/// Times `f` over `reps` repetitions and returns milliseconds per 1,000 rows.
fn ms_per_1000(rows: usize, reps: usize, mut f: impl FnMut() -> f64) -> (f64, f64) {
    let start = Instant::now();
    let mut sink = 0.0;
    for _ in 0..reps {
        sink += f();
    }
    let secs = start.elapsed().as_secs_f64();
    let per_row = secs / (reps.max(1) * rows.max(1)) as f64;
    (per_row * 1e6, sink)
}

fn export(
    dir: &Path,
    month: NaiveDate,
    model: &Model,
    rows: &[Row],
    parts: &[(&str, &[usize])],
) -> Result<(), ModelError> {
    let path = dir.join(format!("{}-{:02}.csv", month.year(), month.month()));
    let io = |e: String| ModelError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    };
    let mut w = csv::Writer::from_path(&path).map_err(|e| io(e.to_string()))?;
    let mut header = vec![
        "invoice_id".to_string(),
        "day".to_string(),
        "part".to_string(),
        "late".to_string(),
    ];
    header.extend(model.content.schema.names.iter().cloned());
    w.write_record(&header).map_err(|e| io(e.to_string()))?;
    for (part, idx) in parts {
        for r in idx.iter().filter_map(|&i| rows.get(i)) {
            let mut rec = vec![
                r.invoice_id.clone(),
                r.day.to_string(),
                (*part).to_string(),
                u8::from(r.late).to_string(),
            ];
            rec.extend(model.row(&r.raw).iter().map(|v| format!("{v}")));
            w.write_record(&rec).map_err(|e| io(e.to_string()))?;
        }
    }
    w.flush().map_err(|e| io(e.to_string()))
}

/// Retrains monthly and scores each month's invoices `days_before_due`
/// days before their due date.
pub fn walk_forward(book: &Book, cfg: &WalkForwardConfig) -> Result<WalkForward, ModelError> {
    let keep = |inv: &Invoice| {
        cfg.customers
            .as_ref()
            .is_none_or(|c| c.contains(&inv.customer_id))
    };
    let horizon = Days::new(u64::from(cfg.days_before_due));
    let last_day = book
        .invoices
        .iter()
        .filter(|i| keep(i))
        .filter_map(|i| i.due_date.checked_sub_days(horizon))
        .max()
        .ok_or_else(|| ModelError::NotEnoughData("no invoices".to_string()))?;
    if let Some(dir) = &cfg.export_dir {
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut months = Vec::new();
    let mut predictions = Vec::new();
    let (mut t_lr, mut t_rf, mut n_lr_fits, mut n_rf_fits, mut total) = (0.0, 0.0, 0, 0, 0.0);
    let (mut score_e2e, mut scored_months) = (0.0, 0);
    let mut pooled: Vec<features::RawFeatures> = Vec::new();
    let mut last_models: Option<(Model, Option<Model>)> = None;
    let mut month = cfg.first_month.with_day(1).unwrap_or(cfg.first_month);
    while month <= last_day && cfg.last_month.is_none_or(|l| month <= l) {
        let next = month
            .checked_add_months(Months::new(1))
            .unwrap_or(NaiveDate::MAX);
        let mut rows = dataset::build_where(book, month, &cfg.train.dataset, keep);
        let n_train = rows.len();
        // This month's invoices, scored `days_before_due` days before due.
        let tests: Vec<Row> = book
            .invoices
            .iter()
            .filter(|i| keep(i))
            .filter_map(|inv| {
                let day = inv.due_date.checked_sub_days(horizon)?;
                (day >= month && day < next && book.is_open(inv, day)).then(|| {
                    let late = book.balance(inv, inv.due_date) > Decimal::ZERO;
                    dataset::row(book, inv, day, late)
                })
            })
            .collect();
        if tests.is_empty() {
            month = next;
            continue;
        }
        let start = Instant::now();
        let outcome = train(&rows, month, &cfg.train)?;
        let train_seconds = start.elapsed().as_secs_f64();
        total += train_seconds;
        // The fit on the same rows scikit-learn fits on (train + valid):
        // the refit when there is one.
        let refits = outcome
            .fit_seconds
            .iter()
            .any(|(n, _)| n.ends_with("refit"));
        for (name, s) in &outcome.fit_seconds {
            if refits != name.ends_with("refit") {
                continue;
            }
            if name.starts_with("logistic") {
                t_lr += s;
                n_lr_fits += 1;
            } else {
                t_rf += s;
                n_rf_fits += 1;
            }
        }
        let lr = of_kind(&outcome.candidates, true);
        let rf = of_kind(&outcome.candidates, false);
        let Some(lr) = lr else {
            return Err(ModelError::Fit(
                "no logistic regression candidate".to_string(),
            ));
        };
        let chosen = &outcome.model;
        let test_start = rows.len();
        if let Some(dir) = &cfg.export_dir {
            rows.extend(tests.iter().cloned());
            let test_idx: Vec<usize> = (test_start..rows.len()).collect();
            export(
                dir,
                month,
                chosen,
                &rows,
                &[
                    ("train", &outcome.split.train),
                    ("valid", &outcome.split.valid),
                    ("test", &test_idx),
                ],
            )?;
        }
        let base = chosen.content.training.base_rate_train;
        for r in &tests {
            predictions.push(Prediction {
                month,
                invoice_id: r.invoice_id.clone(),
                day: r.day,
                late: r.late,
                chosen: chosen.predict(&r.raw),
                logistic_regression: lr.predict(&r.raw),
                random_forest: rf.map(|m| m.predict(&r.raw)),
                baseline: r.prior_late_rate.unwrap_or(base),
            });
        }
        // Timing: computing the features from the book then scoring,
        // invoice by invoice, as the sweep does. (Scoring prepared rows is
        // timed once at the end, on every month's test rows in one batch.)
        pooled.extend(tests.iter().map(|r| r.raw.clone()));
        last_models = Some((lr.clone(), rf.cloned()));
        let chosen_fast = ModelScorer::new(chosen.clone());
        let invoices: Vec<&Invoice> = tests
            .iter()
            .filter_map(|r| {
                book.invoices_of(&r.customer_id)
                    .iter()
                    .find(|i| i.invoice_id == r.invoice_id)
            })
            .collect();
        score_e2e += ms_per_1000(invoices.len(), 3, || {
            invoices
                .iter()
                .zip(&tests)
                .map(|(inv, r)| {
                    chosen_fast.predict_row(&chosen.row(&features::compute(book, inv, r.day)))
                })
                .sum()
        })
        .0;
        scored_months += 1;
        months.push(MonthResult {
            month,
            train_rows: n_train,
            test_rows: tests.len(),
            chosen: chosen.content.training.chosen.clone(),
            train_seconds,
            fit_seconds: outcome.fit_seconds.clone(),
        });
        month = next;
    }
    // Scoring prepared rows with the compiled fast path: every test row in
    // one batch (as scikit-learn's predict_proba is timed), the last month's
    // models, best of five rounds.
    let (mut score_lr, mut score_rf) = (0.0, 0.0);
    if let Some((lr, rf)) = &last_models {
        let rows: Vec<Vec<f64>> = pooled.iter().map(|r| lr.row(r)).collect();
        let best = |scorer: &ModelScorer| -> f64 {
            (0..5)
                .map(|_| ms_per_1000(rows.len(), 20, || scorer.predict_batch(&rows).iter().sum()).0)
                .fold(f64::INFINITY, f64::min)
        };
        score_lr = best(&ModelScorer::new(lr.clone()));
        if let Some(rf) = rf {
            score_rf = best(&ModelScorer::new(rf.clone()));
        }
    }
    let y: Vec<bool> = predictions.iter().map(|p| p.late).collect();
    let of = |f: &dyn Fn(&Prediction) -> f64| -> Metrics {
        let p: Vec<f64> = predictions.iter().map(f).collect();
        Metrics::of(&p, &y)
    };
    let has_rf = predictions.iter().all(|p| p.random_forest.is_some()) && !predictions.is_empty();
    let avg = |s: f64, n: usize| if n > 0 { s / n as f64 } else { 0.0 };
    let out = WalkForward {
        chosen: of(&|p| p.chosen),
        logistic_regression: of(&|p| p.logistic_regression),
        random_forest: has_rf.then(|| of(&|p| p.random_forest.unwrap_or(0.0))),
        baseline: of(&|p| p.baseline),
        timing: Timing {
            fit_seconds_lr: avg(t_lr, n_lr_fits),
            fit_seconds_rf: avg(t_rf, n_rf_fits),
            train_seconds_total: total,
            score_ms_per_1000_lr: score_lr,
            score_ms_per_1000_rf: score_rf,
            features_and_score_ms_per_1000: avg(score_e2e, scored_months),
        },
        months,
        predictions,
        schema: FeatureSchema::current(),
        train_config: cfg.train.clone(),
    };
    if let Some(dir) = &cfg.export_dir {
        let path = dir.join("rust_results.json");
        let text = serde_json::to_string_pretty(&out).map_err(ModelError::Encode)?;
        std::fs::write(&path, text).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(out)
}
