//! A policy as the local runtime runs it: compiled, with the templates
//! beside it and the revisions every action it decides records (Git, and
//! the bundle revision of the policy folder). `run`, `simulate`, `diff`,
//! `explain`, `tasks` and the demo load their policy here.

use crate::home::Home;
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

/// Keeps the bundle revision `loaded` records on every action in the home
/// ([`Home::keep_bundle`]), so `collect explain` can replay with it later.
/// A folder that cannot be bundled is said on stderr and does not stop the
/// run: its actions are then explained with `--policy`.
pub fn keep_bundle(home: &Home, policy: &Path, loaded: &Loaded) {
    match home.keep_bundle(policy, loaded.revision.as_deref()) {
        Ok(kept) if loaded.bundle.as_deref().is_some_and(|b| b != kept) => eprintln!(
            "warning: the policy folder of {} changed while the run started: its actions record \
             bundle revision {}, the home kept revision {kept}",
            policy.display(),
            loaded.bundle.as_deref().unwrap_or_default()
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: {}; `collect explain` of this run's actions will need --policy",
            crate::task_view::chain(&e)
        ),
    }
}
