//! The revisions of what a policy sends, as `check`, `bundle`, `run` and
//! `explain` show and record them: the bundle revision (policy, templates
//! and manifest, see `collect_delivery::revision`) and the Git commit of the
//! policy folder, with a dirty flag when the folder has changes not
//! committed (then only the bundle revision names what was used).

use collect_delivery::revision;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Revisions {
    pub policy: String,
    /// `None` when the folder's files cannot be read (the error is shown).
    pub bundle_revision: Option<String>,
    pub git_commit: Option<String>,
    /// The policy folder has changes not committed (or files not added).
    pub git_dirty: bool,
}

impl Revisions {
    pub fn of(policy: &Path) -> Revisions {
        let (git_commit, git_dirty) =
            git_state(policy).map_or((None, false), |(c, d)| (Some(c), d));
        Revisions {
            policy: policy.display().to_string(),
            bundle_revision: revision::of_policy_file(policy).ok().map(|r| r.revision),
            git_commit,
            git_dirty,
        }
    }

    /// The Git revision recorded on actions: the commit, `-dirty` when the
    /// folder had changes.
    pub fn git_recorded(&self) -> Option<String> {
        self.git_commit.as_ref().map(|c| {
            if self.git_dirty {
                format!("{c}-dirty")
            } else {
                c.clone()
            }
        })
    }

    /// One line: `bundle 1a2b… · git 3c4d… (dirty: …)`.
    pub fn line(&self) -> String {
        let bundle = self
            .bundle_revision
            .as_deref()
            .map_or_else(|| "(cannot be read)".to_string(), |b| b.to_string());
        let git = match (&self.git_commit, self.git_dirty) {
            (Some(c), false) => format!("git {c}"),
            (Some(c), true) => format!(
                "git {c} (dirty: the policy folder has changes not committed; only the bundle revision names them)"
            ),
            (None, _) => "git (not in a Git repository)".to_string(),
        };
        format!("bundle revision {bundle} · {git}")
    }
}

/// The folder of a policy file, for Git.
fn folder(policy: &Path) -> &Path {
    policy
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The commit of the policy folder and whether the folder has changes.
fn git_state(policy: &Path) -> Option<(String, bool)> {
    let dir = folder(policy);
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let commit = out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())?;
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--", "."])
        .output()
        .ok()?;
    let dirty = !status.status.success() || !status.stdout.is_empty();
    Some((commit, dirty))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_change_not_committed_marks_the_git_revision_dirty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("policy/templates")).unwrap();
        let policy = dir.join("policy/p.policy");
        std::fs::write(&policy, "policy p").unwrap();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", "first"]);
        let clean = Revisions::of(&policy);
        let commit = clean.git_commit.clone().unwrap();
        assert!(!clean.git_dirty);
        assert_eq!(clean.git_recorded(), Some(commit.clone()));

        std::fs::write(dir.join("policy/templates/new.txt"), "words").unwrap();
        let dirty = Revisions::of(&policy);
        assert!(dirty.git_dirty);
        assert_eq!(dirty.git_recorded(), Some(format!("{commit}-dirty")));
        assert!(dirty.line().contains("dirty"), "{}", dirty.line());
        assert_ne!(dirty.bundle_revision, clean.bundle_revision);
    }
}
