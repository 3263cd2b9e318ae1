//! `collect bundle policy/ --revision REV [--out FILE]`: the policy bundle
//! CI publishes to S3 (see `collect_delivery::bundle` for the format).
//! The checks of `collect check` run first; a failing policy is never
//! bundled.

use crate::args::Format;
use crate::policy_check::check;
use crate::revisions::Revisions;
use anyhow::{Result, bail};
use collect_delivery::bundle;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bundle a policy folder (policies, templates, manifest with SHA-256s)
/// for deployment; runs the checks of `collect check` first.
#[derive(clap::Args)]
pub struct Args {
    /// The policy folder (policies, templates/).
    dir: PathBuf,
    /// The Git revision of the policy repository.
    #[arg(long)]
    revision: String,
    /// The policy in force, when the folder holds several.
    #[arg(long)]
    policy: Option<String>,
    /// Where to write the bundle (default policy-bundle-<REV>.tar).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    bundle_folder(
        &args.dir,
        &args.revision,
        args.policy.as_deref(),
        args.out.clone(),
    )
}

fn bundle_folder(
    dir: &Path,
    revision: &str,
    policy: Option<&str>,
    out: Option<PathBuf>,
) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder; give the policy folder, e.g. `collect bundle policy/`",
            dir.display()
        );
    }
    if check(&[dir.to_path_buf()], &[])?.print(Format::Human, false)? {
        eprintln!("error: the policy does not pass `collect check`; nothing was bundled");
        return Ok(ExitCode::FAILURE);
    }
    let bytes = bundle::build(dir, revision, policy)?;
    // Read back what was written: the bundle must verify as the Lambdas will.
    let verified = bundle::verify(&bytes)?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from(format!("policy-bundle-{}.tar", verified.manifest.revision))
    });
    std::fs::write(&out, &bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    let git = Revisions::of(&dir.join(&verified.manifest.policy));
    println!(
        "bundled {} file(s) of revision {} (policy {}) into {}\nsha256 {}\nbundle revision {} (recorded on every action it sends; `collect check` prints the same for these files)\ngit {}{}",
        verified.manifest.files.len(),
        verified.manifest.revision,
        verified.manifest.policy,
        out.display(),
        verified.sha256,
        collect_delivery::revision::of_manifest(&verified.manifest),
        git.git_commit
            .as_deref()
            .unwrap_or("(not in a Git repository)"),
        if git.git_dirty {
            " (dirty: the folder has changes not committed)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    #[test]
    fn bundles_a_good_policy_and_refuses_a_failing_one() {
        let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("policy");
        copy(&policy, &dir);
        let out = tmp.path().join("good.tar");
        let code = bundle_folder(&dir, "rev1", None, Some(out.clone())).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let verified = bundle::verify(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(verified.manifest.revision, "rev1");

        let file = dir.join("standard-net30.policy");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("currency USD", "currency")).unwrap();
        let bad = tmp.path().join("bad.tar");
        let code = bundle_folder(&dir, "rev2", None, Some(bad.clone())).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        assert!(!bad.exists(), "a failing policy is never bundled");
    }
}
