//! Weekly retraining on AWS: build the training set from the table's
//! history, train a challenger, evaluate it and the current model on the
//! same recent window, and promote the challenger (move `models/current`)
//! only when it is not worse.
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

/// Where training reads the history from: the whole table on AWS
/// ([`Dynamo`]), the in-memory ledger in tests.
#[allow(async_fn_in_trait)]
pub trait History {
    /// Every customer's book (invoices, payments, events, actions).
    async fn history(&self, today: NaiveDate) -> Result<Book, AwsError>;
}

impl History for Dynamo {
    async fn history(&self, _today: NaiveDate) -> Result<Book, AwsError> {
        let mut customers = Vec::new();
        for shard in 0..self.shards() {
            customers.extend(self.shard_customers(shard).await?);
        }
        self.load_book(&customers).await
    }
}

impl History for collect_delivery::ledger::memory::MemoryLedger {
    async fn history(&self, today: NaiveDate) -> Result<Book, AwsError> {
        // Training reads the whole history: nothing left out.
        collect_delivery::ledger::Ledger::load_book(
            self,
            &collect_delivery::ledger::Scope::All,
            today,
            NaiveDate::MIN,
        )
        .await
        .map_err(AwsError::Ledger)
    }
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
    pub window: (NaiveDate, NaiveDate),
    pub challenger_brier: Option<f64>,
    pub current_brier: Option<f64>,
    pub current_version: Option<String>,
    pub promoted: bool,
    pub reason: String,
}

/// The weekly run: history of every shard, train up to the start of the
/// evaluation window, compare, promote only when not worse.
pub async fn run_training<H: History, S: ModelStore>(
    history: &H,
    artifacts: &S,
    trainer: &dyn ModelTrainer,
    today: NaiveDate,
    window_days: u64,
) -> Result<TrainReport, AwsError> {
    let book = history.history(today).await?;
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
