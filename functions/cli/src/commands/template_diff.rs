//! `collect template-diff OLD NEW`: the letters two revisions of a policy
//! folder write differently, before and after, as Markdown for a pull
//! request comment ([`crate::template_diff`]). Prints nothing when every
//! template reads the same.

use crate::template_diff::{changed, markdown, templates_dir};
use anyhow::{Context, Result};
use collect_delivery::message::templates::Templates;
use std::path::PathBuf;
use std::process::ExitCode;

/// The sample letters of two template revisions, before and after.
#[derive(clap::Args)]
pub struct Args {
    /// The policy folder (or its `templates/` folder) in force now.
    old: PathBuf,
    /// The policy folder (or its `templates/` folder) to compare with it.
    new: PathBuf,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let load = |dir: &PathBuf| {
        let dir = templates_dir(dir);
        Templates::load(&dir).with_context(|| format!("loading the templates in {}", dir.display()))
    };
    let (old, new) = (load(&args.old)?, load(&args.new)?);
    print!(
        "{}",
        markdown(
            &args.old.display().to_string(),
            &args.new.display().to_string(),
            &changed(&old, &new)
        )
    );
    Ok(ExitCode::SUCCESS)
}
