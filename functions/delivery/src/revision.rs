//! One revision for what was sent: the **bundle revision**, a SHA-256 over
//! the policy in force, every template (and the layout the HTML bodies
//! extend, `templates/_layout/`) and the other policies of its folder
//! (the files of a policy bundle, see [`crate::bundle`]) and the
//! manifest that lists them — everything that decides what a customer gets
//! and in which words.
//!
//! It is the manifest's content without its Git revision, so the same files
//! give the same revision wherever they are: in a checkout (`collect check`,
//! `collect run`) or in a bundle built from any commit (`collect bundle`,
//! the sweep Lambda). The Git commit is recorded beside it.

use crate::bundle::{self, BundleError, FORMAT, Manifest, ManifestFile, sha256_hex};
use std::path::Path;

/// The bundle revision of a manifest (its Git revision left out).
pub fn of_manifest(m: &Manifest) -> String {
    let mut files: Vec<&ManifestFile> = m.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut text = format!("collect-bundle {}\npolicy {}\n", m.format, m.policy);
    for f in files {
        text.push_str(&format!(
            "{} {} {}\n",
            f.sha256.to_ascii_lowercase(),
            f.bytes,
            f.path
        ));
    }
    sha256_hex(text.as_bytes())
}

/// What a policy file's folder would bundle with it in force: its manifest
/// (with an empty Git revision) and the bundle revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderRevision {
    pub manifest: Manifest,
    pub revision: String,
}

/// The bundle revision of a policy file and its folder (the `*.policy`
/// files beside it and its `templates/`), equal to the one `collect bundle`
/// of that folder with this policy in force records.
pub fn of_policy_file(policy: &Path) -> Result<FolderRevision, BundleError> {
    let dir = policy
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = policy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut paths = bundle::bundle_files(dir)?;
    if !paths.contains(&name) {
        paths.push(name.clone());
        paths.sort();
    }
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let bytes = std::fs::read(dir.join(&p))
            .map_err(|e| BundleError::Build(format!("cannot read {p}: {e}")))?;
        files.push(ManifestFile {
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
            path: p,
        });
    }
    let manifest = Manifest {
        format: FORMAT,
        revision: String::new(),
        policy: name,
        files,
    };
    Ok(FolderRevision {
        revision: of_manifest(&manifest),
        manifest,
    })
}

/// The first 12 hex digits, as revisions are shown.
pub fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("a.policy"), "policy a").unwrap();
        std::fs::write(dir.path().join("templates/hello.en.txt"), "Hello").unwrap();
        dir
    }

    #[test]
    fn a_template_change_is_a_new_revision_and_the_bundle_agrees() {
        let dir = folder();
        let policy = dir.path().join("a.policy");
        let first = of_policy_file(&policy).unwrap();
        // The same files bundled at any commit give the same revision.
        let bytes = bundle::build(dir.path(), "abc", None).unwrap();
        let verified = bundle::verify(&bytes).unwrap();
        assert_eq!(of_manifest(&verified.manifest), first.revision);
        let other = bundle::build(dir.path(), "def", None).unwrap();
        assert_eq!(
            of_manifest(&bundle::verify(&other).unwrap().manifest),
            first.revision
        );
        // A template's words are covered.
        std::fs::write(dir.path().join("templates/hello.en.txt"), "Hi").unwrap();
        let second = of_policy_file(&policy).unwrap();
        assert_ne!(second.revision, first.revision);
        // And so is which policy is in force.
        std::fs::write(dir.path().join("b.policy"), "policy b").unwrap();
        let a = of_policy_file(&policy).unwrap();
        let b = of_policy_file(&dir.path().join("b.policy")).unwrap();
        assert_ne!(a.revision, b.revision);
    }

    #[test]
    fn a_layout_change_is_a_new_revision_and_the_bundle_agrees() {
        let dir = folder();
        let layout = dir.path().join("templates/_layout/email.html");
        std::fs::create_dir_all(layout.parent().unwrap()).unwrap();
        std::fs::write(&layout, "<p>{% block words required %}{% endblock %}</p>").unwrap();
        let policy = dir.path().join("a.policy");
        let first = of_policy_file(&policy).unwrap();
        assert!(
            first
                .manifest
                .files
                .iter()
                .any(|f| f.path == "templates/_layout/email.html"),
            "{:?}",
            first.manifest
        );
        let bytes = bundle::build(dir.path(), "abc", None).unwrap();
        assert_eq!(
            of_manifest(&bundle::verify(&bytes).unwrap().manifest),
            first.revision
        );
        // Only the layout changes: every HTML email changes with it.
        std::fs::write(
            &layout,
            "<div>{% block words required %}{% endblock %}</div>",
        )
        .unwrap();
        let second = of_policy_file(&policy).unwrap();
        assert_ne!(second.revision, first.revision);
        let bytes = bundle::build(dir.path(), "abc", None).unwrap();
        assert_eq!(
            of_manifest(&bundle::verify(&bytes).unwrap().manifest),
            second.revision
        );
    }
}
