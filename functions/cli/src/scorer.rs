//! The risk scorer of the local runtime: the current model of the home
//! (`<home>/models/current.json`, installed by `collect train --promote`)
//! when there is one, else the transparent fallback (the customer's prior
//! late rate). `run`, `simulate`, `explain`, `tasks` and `score` score
//! with it.
//!
//! Models live in `<home>/models/`: one file per trained model, named by its
//! id, and `current.json`, the champion the sweep uses.

use crate::home::Home;
use collect_engine::sweep::{PriorLateRate, RiskScorer, ScoreInput};
use collect_model::{ModelError, ModelScorer};
use std::path::PathBuf;

/// The current model is there but cannot be used on this build. The
/// model's error is shown, not chained: its message already holds its
/// cause, which a chain would print twice.
#[derive(Debug, thiserror::Error)]
#[error(
    "the current model cannot be used; retrain with `collect train --as-of DATE --promote` or remove {} to use the fallback scorer: {error}",
    path.display()
)]
pub struct ScorerError {
    pub path: PathBuf,
    pub error: ModelError,
}

pub fn models_dir(home: &Home) -> PathBuf {
    home.dir.join("models")
}

pub fn current_path(home: &Home) -> PathBuf {
    models_dir(home).join("current.json")
}

/// The scorer the local runtime uses: the current model when one is
/// installed, else the transparent fallback.
pub enum LocalScorer {
    Model(Box<ModelScorer>, PathBuf),
    Fallback,
}

impl LocalScorer {
    pub fn as_dyn(&self) -> &dyn RiskScorer {
        match self {
            LocalScorer::Model(m, _) => m.as_ref(),
            LocalScorer::Fallback => &PriorLateRate,
        }
    }

    /// One line for people: which scorer and where it came from.
    pub fn describe(&self) -> String {
        match self {
            LocalScorer::Model(m, path) => {
                let model = m.model();
                format!(
                    "risk-model {} ({}, {})",
                    model.short_id(),
                    model.content.estimator.kind(),
                    path.display()
                )
            }
            LocalScorer::Fallback => {
                "prior-late-rate (fallback: no trained model installed; `collect train --as-of DATE --promote` installs one)"
                    .to_string()
            }
        }
    }

    /// The `n` largest contributions to the score, for the model; none for the fallback.
    pub fn explain(&self, input: &ScoreInput<'_>, n: usize) -> Vec<(String, f64)> {
        match self {
            LocalScorer::Model(m, _) => m.explain(input).into_iter().take(n).collect(),
            LocalScorer::Fallback => Vec::new(),
        }
    }

    pub fn model_id(&self) -> Option<&str> {
        match self {
            LocalScorer::Model(m, _) => Some(&m.model().model_id),
            LocalScorer::Fallback => None,
        }
    }
}

impl collect_delivery::explain::ExplainScorer for LocalScorer {
    fn scorer(&self) -> &dyn RiskScorer {
        self.as_dyn()
    }
    fn describe(&self) -> String {
        LocalScorer::describe(self)
    }
    fn factors(&self, input: &ScoreInput<'_>, n: usize) -> Vec<(String, f64)> {
        self.explain(input, n)
    }
}

/// The current model (`<home>/models/current.json`) when it exists, else the
/// fallback. A model that cannot run on this build is an error, not a
/// silent fallback: the sweep must not change its scorer unannounced.
pub fn scorer(home: &Home) -> Result<LocalScorer, ScorerError> {
    let path = current_path(home);
    if !path.exists() {
        return Ok(LocalScorer::Fallback);
    }
    let m = ModelScorer::load(&path).map_err(|error| ScorerError {
        path: path.clone(),
        error,
    })?;
    Ok(LocalScorer::Model(Box::new(m), path))
}
