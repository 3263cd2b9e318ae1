//! A policy as the local runtime runs it: compiled, with the templates
//! beside it and the revisions every action it decides records (Git, and
//! the bundle revision of the policy folder). `run`, `simulate`, `diff`,
//! `explain`, `tasks` and the demo load their policy here.

use crate::policy_files::{self, PolicyFileError};
use crate::revisions::Revisions;
use collect_delivery::message::{TemplateError, Templates};
use policy_lang::Policy;
use std::path::Path;

/// A policy that cannot be run: it does not load, or its templates do not.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    /// The `templates/` folder beside the policy (its path is in the error).
    #[error("{0}")]
    Templates(TemplateError),
}

pub struct Loaded {
    pub policy: Policy,
    pub templates: Templates,
    /// The Git revision (`-dirty` when the policy folder has changes).
    pub revision: Option<String>,
    /// The bundle revision of the policy folder (policy + templates +
    /// manifest), recorded on every action.
    pub bundle: Option<String>,
}

pub fn load_policy(policy: &Path) -> Result<Loaded, LoadError> {
    let compiled = policy_files::load(policy)?;
    let templates = templates_for(policy).map_err(LoadError::Templates)?;
    let revisions = Revisions::of(policy);
    Ok(Loaded {
        policy: compiled,
        templates,
        revision: revisions.git_recorded(),
        bundle: revisions.bundle_revision,
    })
}

/// The templates beside a policy file.
pub fn templates_for(policy: &Path) -> Result<Templates, TemplateError> {
    let dir = policy.parent().unwrap_or(Path::new(".")).join("templates");
    Templates::load(&dir)
}
