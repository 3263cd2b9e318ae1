//! Every bundle revision a home ran under, kept by its revision, so an
//! action can be explained with the policy and templates that decided it
//! — years later, with no checkout.
//!
//! The port is [`BundleStore`]: the archive of a bundle revision (the tar
//! of [`crate::bundle`]), or nothing when it is not held. Two adapters:
//! [`BundleDir`], a folder of `<revision>.tar` files (the local home's
//! `bundles/`), and on AWS the artifacts bucket
//! (`bundles/by-revision/<revision>.tar`, in `collect-aws`). Content
//! addressed: the name is the bundle revision ([`crate::revision`]) of the
//! archive's manifest, and [`load_revision`] checks it on every read, so an
//! archive that was altered or misfiled is refused, never explained with.

use crate::bundle::{self, BundleError, LoadedBundle};
use crate::revision;
use std::path::{Path, PathBuf};

/// A bundle store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleStoreError {
    #[error("cannot read or write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The store's own error (e.g. S3), as text.
    #[error("{0}")]
    Storage(String),
}

/// Where the bundle revisions a runtime ran under are kept.
#[allow(async_fn_in_trait)]
pub trait BundleStore {
    /// The archive of `revision`, as stored; `None` when it is not held.
    async fn get(&self, revision: &str) -> Result<Option<Vec<u8>>, BundleStoreError>;
    /// Where `revision` is (or would be) kept, for messages.
    fn location(&self, revision: &str) -> String;
}

/// Why a recorded bundle revision cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// Not held: e.g. a home from a release that kept no revisions.
    #[error("bundle revision {revision} is not kept at {location}")]
    NotHeld { revision: String, location: String },
    /// The archive's manifest has another revision than its name.
    #[error(
        "the bundle kept as revision {revision} at {location} is revision {actual}: it was \
         altered or misfiled, and is not used"
    )]
    Mismatch {
        revision: String,
        actual: String,
        location: String,
    },
    #[error("the bundle kept at {location}: {source}")]
    Bundle {
        location: String,
        #[source]
        source: BundleError,
    },
    #[error(transparent)]
    Store(#[from] BundleStoreError),
}

/// The bundle of `revision` from `store`, verified (every file against the
/// manifest, the manifest against the revision) and loaded: its policy
/// compiled, its templates read from the files written under `scratch`
/// (emptied first, so nothing but the bundle's files is there).
pub async fn load_revision<S: BundleStore + ?Sized>(
    store: &S,
    revision: &str,
    scratch: &Path,
) -> Result<LoadedBundle, RevisionError> {
    let location = store.location(revision);
    let Some(bytes) = store.get(revision).await? else {
        return Err(RevisionError::NotHeld {
            revision: revision.to_string(),
            location,
        });
    };
    let bundle_err = |source| RevisionError::Bundle {
        location: location.clone(),
        source,
    };
    let verified = bundle::verify(&bytes).map_err(bundle_err)?;
    let actual = revision::of_manifest(&verified.manifest);
    if actual != revision {
        return Err(RevisionError::Mismatch {
            revision: revision.to_string(),
            actual,
            location,
        });
    }
    match std::fs::remove_dir_all(scratch) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BundleStoreError::Io {
                path: scratch.to_path_buf(),
                source,
            }
            .into());
        }
    }
    verified.load(scratch).map_err(bundle_err)
}

/// The bundle of a policy file's folder with that policy in force (the
/// archive `collect bundle` writes, its manifest naming `git` as the Git
/// revision) and its bundle revision.
pub fn bundle_of_policy_file(policy: &Path, git: &str) -> Result<(String, Vec<u8>), BundleError> {
    let dir = policy
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = policy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = bundle::build(dir, git, Some(&name))?;
    let verified = bundle::verify(&bytes)?;
    Ok((revision::of_manifest(&verified.manifest), bytes))
}

/// A folder of bundles, one `<revision>.tar` each: the local home's
/// `bundles/`.
#[derive(Debug, Clone)]
pub struct BundleDir {
    dir: PathBuf,
}

impl BundleDir {
    pub fn new(dir: impl Into<PathBuf>) -> BundleDir {
        BundleDir { dir: dir.into() }
    }

    pub fn path_of(&self, revision: &str) -> PathBuf {
        self.dir.join(format!("{revision}.tar"))
    }

    /// Keeps `bytes`, the bundle of `revision`, unless it is kept already
    /// (idempotent: the same revision is the same policy and templates,
    /// whatever Git commit the archive names). Written to a temporary
    /// file and renamed, so a reader never sees half an archive. Returns
    /// whether it was written.
    pub fn put(&self, revision: &str, bytes: &[u8]) -> Result<bool, BundleStoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BundleStoreError::Io { path, source }
        };
        let target = self.path_of(revision);
        if target.is_file() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = self
            .dir
            .join(format!(".{revision}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        Ok(true)
    }
}

impl BundleStore for BundleDir {
    async fn get(&self, revision: &str) -> Result<Option<Vec<u8>>, BundleStoreError> {
        // A revision is hex; anything else names no file of this folder.
        if revision.is_empty() || !revision.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let path = self.path_of(revision);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BundleStoreError::Io { path, source }),
        }
    }

    fn location(&self, revision: &str) -> String {
        self.path_of(revision).display().to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn policy() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy/standard-net30.policy")
    }

    #[test]
    fn a_kept_revision_loads_and_an_altered_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = BundleDir::new(tmp.path().join("bundles"));
        let (rev, bytes) = bundle_of_policy_file(&policy(), "abc").unwrap();
        assert_eq!(rev, revision::of_policy_file(&policy()).unwrap().revision);
        assert!(store.put(&rev, &bytes).unwrap());
        // Idempotent, whatever commit the archive names.
        let (same, other) = bundle_of_policy_file(&policy(), "def").unwrap();
        assert_eq!(same, rev);
        assert!(!store.put(&rev, &other).unwrap());
        let scratch = tmp.path().join("scratch");
        let loaded = pollster::block_on(load_revision(&store, &rev, &scratch)).unwrap();
        assert_eq!(loaded.policy.name, "standard-net30");

        let missing = "ab".repeat(32);
        assert!(matches!(
            pollster::block_on(load_revision(&store, &missing, &scratch)),
            Err(RevisionError::NotHeld { .. })
        ));
        // A bundle filed under another revision's name is refused.
        std::fs::copy(store.path_of(&rev), store.path_of(&missing)).unwrap();
        let Err(err) = pollster::block_on(load_revision(&store, &missing, &scratch)) else {
            panic!("a misfiled bundle loaded");
        };
        assert!(matches!(err, RevisionError::Mismatch { .. }), "{err}");
    }
}
