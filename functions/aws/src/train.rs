//! Weekly retraining on AWS: build the training set from the table's
//! history, train a challenger, evaluate it and the current model on the
//! same recent window, and promote the challenger (move `models/current`)
//! only when it is not worse.
//!
//! **Bounded.** A run reads a sample of the customers ([`Sample`]: at most
//! `TRAIN_SAMPLE_CUSTOMERS`, default 20,000, drawn as the customers index
//! streams past one virtual shard at a time) and their whole histories, and
//! trains on as many of them as fit in `TRAIN_SAMPLE_INVOICES` (default
//! 50,000 invoices), so its memory and time depend on the sample's size,
//! not the table's.
//!
//! The model itself is behind [`ModelTrainer`], so this orchestration does
//! not depend on how a model is built, and the sweep, which only scores
//! ([`ModelKind`], [`RiskModel`]), links no training library.
//! `collect_train::RiskModelTrainer` (the train function's own crate, which
//! links smartcore) trains the risk model of [`collect_model`];
//! [`PriorRateTrainer`] is the transparent fallback (the customer's prior
//! late rate), which the sweep also uses until a model is promoted.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::AwsError;
use super::artifacts::{Artifacts, Pointer};
use super::dynamo::Dynamo;
use collect_engine::book::Book;
use collect_engine::sweep::{PriorLateRate, RiskScorer, ScoreInput};
use collect_model::ModelError;

/// A kind of model the sweep can score with: its name, and how to read its
/// artifact. Scoring links no training library.
pub trait ModelKind: Send + Sync {
    /// The `kind` written in (and expected from) its artifacts.
    fn kind(&self) -> &'static str;
    /// A scorer from an artifact of this kind.
    fn scorer(&self, artifact: &[u8]) -> Result<Box<dyn RiskScorer + Send + Sync>, ModelError>;
}

/// A kind of model the train function can fit (the trained risk model is
/// the train function's own: `collect-train`, which links the training
/// library).
pub trait ModelTrainer: ModelKind {
    /// Trains on what was known up to `until` (facts dated after it must
    /// not be used: they are the evaluation window's answers).
    fn train(&self, book: &Book, until: NaiveDate) -> Result<Vec<u8>, ModelError>;
}

/// The artifact of the fallback: no parameters, only its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KindOnly {
    kind: String,
}

/// The fallback scorer as a "model": nothing to fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct PriorRateTrainer;

impl ModelKind for PriorRateTrainer {
    fn kind(&self) -> &'static str {
        "prior-late-rate"
    }
    fn scorer(&self, artifact: &[u8]) -> Result<Box<dyn RiskScorer + Send + Sync>, ModelError> {
        let k: KindOnly = serde_json::from_slice(artifact).map_err(ModelError::Decode)?;
        if k.kind == self.kind() {
            Ok(Box::new(PriorLateRate))
        } else {
            Err(ModelError::OtherKind {
                found: k.kind,
                expected: self.kind(),
            })
        }
    }
}

impl ModelTrainer for PriorRateTrainer {
    fn train(&self, _book: &Book, _until: NaiveDate) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&KindOnly {
            kind: self.kind().to_string(),
        })
        .map_err(ModelError::Encode)
    }
}

/// The trained risk model of [`collect_model`] as the sweep reads it: its
/// artifact is the model file (`Model::to_json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RiskModel;

impl RiskModel {
    /// The kind written in its artifacts.
    pub const KIND: &'static str = "risk-model";
}

impl ModelKind for RiskModel {
    fn kind(&self) -> &'static str {
        RiskModel::KIND
    }
    fn scorer(&self, artifact: &[u8]) -> Result<Box<dyn RiskScorer + Send + Sync>, ModelError> {
        let text = std::str::from_utf8(artifact)
            .map_err(|e| ModelError::Invalid(format!("the model file is not UTF-8 text: {e}")))?;
        let model = collect_model::Model::from_json(text)?;
        Ok(Box::new(collect_model::ModelScorer::new(model)))
    }
}

/// The kinds of model this build reads: an artifact is read by the first
/// that accepts it.
pub fn kinds() -> Vec<Box<dyn ModelKind>> {
    vec![Box::new(PriorRateTrainer), Box::new(RiskModel)]
}

/// An artifact no kind of model this build knows accepts, with each kind's
/// reason.
#[derive(Debug, thiserror::Error)]
#[error("{}", .tried.iter().map(|(kind, e)| format!("not a {kind} artifact: {e}")).collect::<Vec<_>>().join("; "))]
pub struct UnknownModel {
    pub tried: Vec<(&'static str, ModelError)>,
}

/// The scorer of the current model; the fallback when none was promoted.
/// An artifact this build cannot read is an error (the function fails and
/// alarms rather than silently scoring another way).
pub async fn load_scorer(
    artifacts: &Artifacts,
) -> Result<Box<dyn RiskScorer + Send + Sync>, AwsError> {
    let Some((pointer, bytes)) = artifacts.current_model().await? else {
        tracing::info!(
            scorer = "prior-late-rate",
            "no model promoted yet (s3://{}/{}): scoring with the prior late rate, as `collect run` does without a model",
            artifacts.bucket(),
            super::artifacts::MODEL_POINTER
        );
        return Ok(Box::new(PriorLateRate));
    };
    scorer_for(&bytes).map_err(|source| AwsError::UnreadableModel {
        key: pointer.key,
        source,
    })
}

fn scorer_for(bytes: &[u8]) -> Result<Box<dyn RiskScorer + Send + Sync>, UnknownModel> {
    let mut tried = Vec::new();
    for k in kinds() {
        match k.scorer(bytes) {
            Ok(s) => return Ok(s),
            Err(e) => tried.push((k.kind(), e)),
        }
    }
    Err(UnknownModel { tried })
}

/// Brier score (lower is better) of a scorer on the invoices due in
/// `[from, to)`: each scored as it would have been `lead_days` before its
/// due date, against whether it was paid late (settled after the due date,
/// or unpaid by `to`). A missing score counts as 0.5.
pub fn brier(
    book: &Book,
    scorer: &dyn RiskScorer,
    from: NaiveDate,
    to: NaiveDate,
    lead_days: u64,
) -> Option<f64> {
    let mut total = 0.0;
    let mut n = 0u32;
    for inv in book
        .invoices
        .iter()
        .filter(|i| i.due_date >= from && i.due_date < to)
    {
        let as_of = inv.due_date.checked_sub_days(Days::new(lead_days))?;
        if inv.issue_date > as_of || !book.is_open(inv, as_of) {
            continue;
        }
        let late = match book.settled_on(inv) {
            Some(d) if d <= to => d > inv.due_date,
            _ => true,
        };
        let stats = book.customer_stats(&inv.customer_id, as_of);
        let p = scorer
            .score(&ScoreInput {
                book,
                invoice: inv,
                day: as_of,
                stats: &stats,
            })
            .unwrap_or(0.5);
        let y = if late { 1.0 } else { 0.0 };
        total += (p - y) * (p - y);
        n += 1;
    }
    (n > 0).then(|| total / f64::from(n))
}

/// How much of the history a training run reads: the whole history of at
/// most `max_customers` customers, so its memory and time do not grow with
/// the book (`TRAIN_SAMPLE_CUSTOMERS`, default
/// [`DEFAULT_SAMPLE_CUSTOMERS`]).
///
/// The customers are a *bottom-k* sample: the `max_customers` whose hash of
/// (the training day, the customer id) is smallest. It is uniform, the
/// same whatever order the customers are read in (shard by shard, or all
/// at once), needs only `max_customers` ids in memory while the customers
/// stream past, and changes every week (the day is in the hash), so over
/// the weeks every customer is trained on. A book with fewer customers is
/// read whole.
///
/// Training's time grows with the invoices it learns from, not the
/// customers (measured: 13,629 invoices 44 s, 136,626 invoices 619 s and
/// 2.1 GB; BENCHMARKS.md, "Training in bounded memory and time"), so the
/// sample is also cut to `max_invoices`: the customers are taken in the
/// order of their hash (a uniform order) while their invoices fit
/// ([`Sample::cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub max_customers: usize,
    /// At most this many invoices are trained on (`TRAIN_SAMPLE_INVOICES`,
    /// default [`DEFAULT_SAMPLE_INVOICES`]); one customer with more is
    /// still trained on alone.
    pub max_invoices: usize,
}

/// The customers a training run reads by default (their invoices are then
/// cut to [`DEFAULT_SAMPLE_INVOICES`]): it bounds the read, a Query per
/// customer.
pub const DEFAULT_SAMPLE_CUSTOMERS: usize = 20_000;

/// The invoices a training run learns from by default: about 200 s of
/// training and 0.8 GB on this project's benchmark machine (BENCHMARKS.md),
/// well inside the train function's 900 s and 3,008 MB.
pub const DEFAULT_SAMPLE_INVOICES: usize = 50_000;

impl Default for Sample {
    fn default() -> Sample {
        Sample {
            max_customers: DEFAULT_SAMPLE_CUSTOMERS,
            max_invoices: DEFAULT_SAMPLE_INVOICES,
        }
    }
}

impl Sample {
    /// `TRAIN_SAMPLE_CUSTOMERS` and `TRAIN_SAMPLE_INVOICES` (each at least
    /// 1), or the defaults.
    pub fn from_env() -> Sample {
        let positive = |name: &str| {
            super::config::env_opt(name)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n > 0)
        };
        let default = Sample::default();
        Sample {
            max_customers: positive("TRAIN_SAMPLE_CUSTOMERS").unwrap_or(default.max_customers),
            max_invoices: positive("TRAIN_SAMPLE_INVOICES").unwrap_or(default.max_invoices),
        }
    }

    /// The sampled book cut to [`Sample::max_invoices`]: its customers in
    /// the order of the sample's hash for `today` (a uniform order), as
    /// long as their invoices fit; the first customer is kept whatever its
    /// count. A book within the limit is returned as it is. Returns the
    /// book and how many customers it keeps.
    pub fn cut(&self, today: NaiveDate, book: Book) -> (Book, usize) {
        if book.invoices.len() <= self.max_invoices {
            let customers = book.customers.len();
            return (book, customers);
        }
        let mut invoices: std::collections::HashMap<&str, usize> = Default::default();
        for i in &book.invoices {
            *invoices.entry(i.customer_id.as_str()).or_default() += 1;
        }
        let sampler = self.sampler(today);
        let mut ranked: Vec<(u64, &str)> = book
            .customers
            .keys()
            .map(|c| (sampler.rank(c), c.as_str()))
            .collect();
        ranked.sort_unstable();
        let mut keep = std::collections::HashSet::new();
        let mut total = 0usize;
        for (_, c) in ranked {
            let n = invoices.get(c).copied().unwrap_or(0);
            if !keep.is_empty() && total.saturating_add(n) > self.max_invoices {
                break;
            }
            total = total.saturating_add(n);
            keep.insert(c.to_string());
        }
        let kept = keep.len();
        (only_customers(book, &keep), kept)
    }

    /// A sampler for the run of `today`.
    pub fn sampler(&self, today: NaiveDate) -> Sampler {
        Sampler {
            seed: today.to_string(),
            max: self.max_customers.max(1),
            seen: 0,
            kept: std::collections::BinaryHeap::new(),
        }
    }
}

/// The bottom-k sample of the customers streamed through [`Sampler::offer`].
#[derive(Debug)]
pub struct Sampler {
    seed: String,
    max: usize,
    seen: usize,
    /// The kept customers by their hash, the largest on top (the first to
    /// go when a smaller one comes).
    kept: std::collections::BinaryHeap<(u64, String)>,
}

impl Sampler {
    fn rank(&self, customer_id: &str) -> u64 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.seed.as_bytes())
            .chain_update([0u8])
            .chain_update(customer_id.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        for (slot, byte) in first.iter_mut().zip(digest.iter()) {
            *slot = *byte;
        }
        u64::from_be_bytes(first)
    }

    /// One customer read.
    pub fn offer(&mut self, customer_id: String) {
        self.seen += 1;
        let rank = self.rank(&customer_id);
        if self.kept.len() < self.max {
            self.kept.push((rank, customer_id));
        } else if self.kept.peek().is_some_and(|(top, _)| rank < *top) {
            self.kept.pop();
            self.kept.push((rank, customer_id));
        }
    }

    /// How many customers were offered.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The sample, sorted by id.
    pub fn customers(self) -> Vec<String> {
        let mut ids: Vec<String> = self.kept.into_iter().map(|(_, id)| id).collect();
        ids.sort();
        ids
    }
}

/// What a training run read: the sampled customers' whole books, and how
/// many customers there were to choose from.
#[derive(Debug, Default)]
pub struct Sampled {
    pub book: Book,
    /// Customers in the table.
    pub customers_seen: usize,
    /// Customers read (at most the sample's size).
    pub customers: usize,
}

/// Where training reads the history from: the table on AWS ([`Dynamo`]),
/// the in-memory ledger in tests; either way a [`Sample`] of customers.
#[allow(async_fn_in_trait)]
pub trait History {
    /// The sampled customers' books (invoices, payments, events, actions).
    async fn history(&self, today: NaiveDate, sample: &Sample) -> Result<Sampled, AwsError>;
}

impl History for Dynamo {
    /// The customers index, one virtual shard at a time (one Query each,
    /// paged), through the sampler: never more ids in memory than one
    /// virtual shard's and the sample's; then the sample's partitions.
    async fn history(&self, today: NaiveDate, sample: &Sample) -> Result<Sampled, AwsError> {
        let mut sampler = sample.sampler(today);
        for shard in 0..self.shards() {
            for c in self.shard_customers(shard).await? {
                sampler.offer(c);
            }
        }
        let customers_seen = sampler.seen();
        let chosen = sampler.customers();
        let book = self.load_book(&chosen).await?;
        Ok(Sampled {
            book,
            customers_seen,
            customers: chosen.len(),
        })
    }
}

impl History for collect_delivery::ledger::memory::MemoryLedger {
    async fn history(&self, today: NaiveDate, sample: &Sample) -> Result<Sampled, AwsError> {
        // The whole history (nothing folded), then the sample's customers.
        let all = collect_delivery::ledger::Ledger::load_book(
            self,
            &collect_delivery::ledger::Scope::All,
            today,
            NaiveDate::MIN,
        )
        .await
        .map_err(AwsError::Ledger)?;
        let mut sampler = sample.sampler(today);
        for c in all.customers.keys() {
            sampler.offer(c.clone());
        }
        let customers_seen = sampler.seen();
        let chosen: std::collections::HashSet<String> = sampler.customers().into_iter().collect();
        Ok(Sampled {
            customers: chosen.len(),
            book: only_customers(all, &chosen),
            customers_seen,
        })
    }
}

/// The part of a book about some customers.
fn only_customers(book: Book, keep: &std::collections::HashSet<String>) -> Book {
    let invoices: Vec<_> = book
        .invoices
        .into_iter()
        .filter(|i| keep.contains(i.customer_id.as_str()))
        .collect();
    let ids: std::collections::HashSet<&str> =
        invoices.iter().map(|i| i.invoice_id.as_str()).collect();
    let of_kept = |invoice_id: &String| ids.contains(invoice_id.as_str());
    let payments = book
        .payments
        .into_iter()
        .filter(|(id, _)| of_kept(id))
        .flat_map(|(_, p)| p)
        .collect();
    let events = book
        .events
        .into_iter()
        .filter(|(id, _)| of_kept(id))
        .flat_map(|(_, e)| e)
        .collect();
    let actions = book
        .actions
        .into_iter()
        .filter(|(id, _)| of_kept(id))
        .flat_map(|(_, a)| a)
        .collect();
    let customers = book
        .customers
        .into_iter()
        .filter(|(id, _)| keep.contains(id))
        .map(|(_, c)| c)
        .collect();
    Book::new(customers, invoices, payments, events, actions)
}

/// Where models are kept: S3 ([`Artifacts`]) on AWS, [`MemoryModels`] in
/// tests.
#[allow(async_fn_in_trait)]
pub trait ModelStore {
    /// The promoted model's pointer and bytes; `None` before the first.
    async fn current_model(&self) -> Result<Option<(Pointer, Vec<u8>)>, AwsError>;
    /// Stores a model under its version without promoting it.
    async fn put_model(&self, version: &str, bytes: Vec<u8>) -> Result<Pointer, AwsError>;
    /// Makes a stored model the current one.
    async fn promote_model(&self, pointer: &Pointer) -> Result<(), AwsError>;
}

impl ModelStore for Artifacts {
    async fn current_model(&self) -> Result<Option<(Pointer, Vec<u8>)>, AwsError> {
        Artifacts::current_model(self).await
    }
    async fn put_model(&self, version: &str, bytes: Vec<u8>) -> Result<Pointer, AwsError> {
        Artifacts::put_model(self, version, bytes).await
    }
    async fn promote_model(&self, pointer: &Pointer) -> Result<(), AwsError> {
        Artifacts::promote_model(self, pointer).await
    }
}

#[derive(Debug, Default)]
struct Models {
    objects: std::collections::BTreeMap<String, Vec<u8>>,
    current: Option<Pointer>,
}

/// Models in memory, keyed as in the bucket.
#[derive(Debug, Default)]
pub struct MemoryModels {
    inner: std::sync::Mutex<Models>,
}

impl MemoryModels {
    fn lock(&self) -> std::sync::MutexGuard<'_, Models> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The keys stored, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }
}

impl ModelStore for MemoryModels {
    async fn current_model(&self) -> Result<Option<(Pointer, Vec<u8>)>, AwsError> {
        let inner = self.lock();
        Ok(inner.current.as_ref().and_then(|p| {
            inner
                .objects
                .get(&p.key)
                .map(|bytes| (p.clone(), bytes.clone()))
        }))
    }
    async fn put_model(&self, version: &str, bytes: Vec<u8>) -> Result<Pointer, AwsError> {
        let key = format!("models/{version}/model.json");
        let pointer = Pointer {
            key: key.clone(),
            revision: version.to_string(),
            sha256: Some(collect_delivery::bundle::sha256_hex(&bytes)),
        };
        self.lock().objects.insert(key, bytes);
        Ok(pointer)
    }
    async fn promote_model(&self, pointer: &Pointer) -> Result<(), AwsError> {
        self.lock().current = Some(pointer.clone());
        Ok(())
    }
}

/// What a training run decided.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub kind: String,
    pub version: String,
    pub invoices: usize,
    /// Customers trained on (the sample).
    pub customers: usize,
    /// Customers in the table the sample was drawn from.
    pub customers_seen: usize,
    pub window: (NaiveDate, NaiveDate),
    pub challenger_brier: Option<f64>,
    pub current_brier: Option<f64>,
    pub current_version: Option<String>,
    pub promoted: bool,
    pub reason: String,
}

/// The weekly run: a sample of the customers' histories ([`Sample`]), train
/// up to the start of the evaluation window, compare on the sample's
/// window, promote only when not worse.
pub async fn run_training<H: History, S: ModelStore>(
    history: &H,
    artifacts: &S,
    trainer: &dyn ModelTrainer,
    today: NaiveDate,
    window_days: u64,
    sample: &Sample,
) -> Result<TrainReport, AwsError> {
    let Sampled {
        book,
        customers_seen,
        customers,
    } = history.history(today, sample).await?;
    let read = (customers, book.invoices.len());
    let (book, customers) = sample.cut(today, book);
    tracing::info!(
        customers,
        customers_seen,
        invoices = book.invoices.len(),
        customers_read = read.0,
        invoices_read = read.1,
        max_customers = sample.max_customers,
        max_invoices = sample.max_invoices,
        "training sample read"
    );
    let from = today
        .checked_sub_days(Days::new(window_days))
        .unwrap_or(today);
    let artifact = trainer.train(&book, from).map_err(AwsError::Training)?;
    let challenger = trainer
        .scorer(&artifact)
        .map_err(AwsError::ModelDoesNotLoad)?;
    let lead = 10;
    let challenger_brier = brier(&book, challenger.as_ref(), from, today, lead);
    let current = artifacts.current_model().await?;
    let (current_version, current_brier) = match &current {
        Some((pointer, bytes)) => {
            let score = scorer_for(bytes)
                .ok()
                .and_then(|s| brier(&book, s.as_ref(), from, today, lead));
            (Some(pointer.revision.clone()), score)
        }
        None => (None, None),
    };
    let version = format!(
        "{today}-{}",
        collect_delivery::bundle::sha256_hex(&artifact)
            .get(..12)
            .unwrap_or("0")
    );
    let (promote, reason) = match (challenger_brier, current_brier, &current) {
        (_, _, None) => (true, "no model was promoted before".to_string()),
        (Some(new), Some(old), _) if new <= old + 1e-12 => (
            true,
            format!("Brier {new:.4} is not worse than the current {old:.4}"),
        ),
        (Some(new), Some(old), _) => (
            false,
            format!("Brier {new:.4} is worse than the current {old:.4}"),
        ),
        (Some(_), None, Some(_)) => (
            true,
            "the current model cannot be evaluated by this build".to_string(),
        ),
        (None, _, Some(_)) => (
            false,
            "no invoice in the evaluation window: nothing to compare on".to_string(),
        ),
    };
    let same = current.as_ref().is_some_and(|(p, _)| {
        p.sha256.as_deref() == Some(&collect_delivery::bundle::sha256_hex(&artifact))
    });
    let promoted = if promote && !same {
        let pointer: Pointer = artifacts.put_model(&version, artifact).await?;
        artifacts.promote_model(&pointer).await?;
        true
    } else {
        false
    };
    let reason = if same {
        "the new model is identical to the current one".to_string()
    } else {
        reason
    };
    tracing::info!(
        kind = trainer.kind(),
        version = %version,
        promoted,
        reason = %reason,
        "training done"
    );
    Ok(TrainReport {
        kind: trainer.kind().to_string(),
        version,
        invoices: book.invoices.len(),
        customers,
        customers_seen,
        window: (from, today),
        challenger_brier,
        current_brier,
        current_version,
        promoted,
        reason,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_bounded_uniform_and_the_same_in_any_order() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let ids: Vec<String> = (0..1000).map(|n| format!("C{n}")).collect();
        let sample = Sample {
            max_customers: 50,
            ..Sample::default()
        };
        let mut forward = sample.sampler(day);
        ids.iter().for_each(|c| forward.offer(c.clone()));
        let mut backward = sample.sampler(day);
        ids.iter().rev().for_each(|c| backward.offer(c.clone()));
        assert_eq!(forward.seen(), 1000);
        let chosen = forward.customers();
        assert_eq!(chosen.len(), 50);
        assert_eq!(chosen, backward.customers());
        // Another week, another sample.
        let mut next = sample.sampler(day.succ_opt().unwrap());
        ids.iter().for_each(|c| next.offer(c.clone()));
        assert_ne!(chosen, next.customers());
        // Fewer customers than the cap: all of them.
        let mut few = sample.sampler(day);
        ids.iter().take(7).for_each(|c| few.offer(c.clone()));
        assert_eq!(few.customers().len(), 7);
    }

    #[test]
    fn the_sample_is_cut_to_its_invoices_in_the_order_of_its_hash() {
        use collect_testkit::book::{customer, invoice};
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        // 200 customers with 1 to 5 invoices each: 600 invoices.
        let ids: Vec<String> = (0..200).map(|n| format!("C{n}")).collect();
        let invoices: Vec<_> = ids
            .iter()
            .enumerate()
            .flat_map(|(n, c)| {
                (0..=n % 5).map(move |k| invoice(&format!("{c}-{k}"), c, "2026-11-01", "10.00"))
            })
            .collect();
        let book = || {
            Book::new(
                ids.iter().map(|c| customer(c)).collect(),
                invoices.clone(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            )
        };
        let sample = Sample {
            max_customers: 200,
            max_invoices: 100,
        };
        let (cut, kept) = sample.cut(day, book());
        assert!(cut.invoices.len() <= 100, "{}", cut.invoices.len());
        assert_eq!(cut.customers.len(), kept);
        // The customers kept are the first of the sample's order: the ones
        // a sample of that many customers would draw, and the next one did
        // not fit.
        let mut smaller = Sample {
            max_customers: kept,
            ..sample
        }
        .sampler(day);
        ids.iter().for_each(|c| smaller.offer(c.clone()));
        let mut chosen: Vec<String> = cut.customers.keys().cloned().collect();
        chosen.sort();
        assert_eq!(chosen, smaller.customers());
        let mut one_more = Sample {
            max_customers: kept + 1,
            ..sample
        }
        .sampler(day);
        ids.iter().for_each(|c| one_more.offer(c.clone()));
        let next = one_more
            .customers()
            .into_iter()
            .find(|c| !chosen.contains(c))
            .unwrap();
        let of_next = invoices.iter().filter(|i| i.customer_id == next).count();
        assert!(cut.invoices.len() + of_next > 100);
        // Within the limit: the book as it is.
        let (whole, kept) = Sample {
            max_invoices: 600,
            ..sample
        }
        .cut(day, book());
        assert_eq!((whole.invoices.len(), kept), (600, 200));
    }

    #[test]
    fn the_fallback_round_trips() {
        let bytes = PriorRateTrainer
            .train(
                &Book::default(),
                NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            )
            .unwrap();
        assert!(
            scorer_for(&bytes)
                .unwrap()
                .name()
                .starts_with("prior-late-rate")
        );
        assert!(scorer_for(b"{}").is_err());
    }
}
