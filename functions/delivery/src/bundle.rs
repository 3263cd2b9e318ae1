//! The policy bundle: what CI publishes from the policy repository and what
//! the Lambda functions act on.
//!
//! A bundle is an uncompressed tar archive (inspect it with `tar tvf`)
//! holding the policy files (`*.policy`), their `templates/` (the layout
//! the HTML bodies extend, `templates/_layout/`, with them) and a
//! `manifest.json` that names the Git revision, the policy in force and the
//! SHA-256 and size of every other file. The archive is deterministic: the
//! same folder and revision always give the same bytes.
//!
//! [`verify`] fails closed: a missing, altered, unlisted or oddly named
//! file, or a policy that does not compile, refuses the whole bundle with a
//! [`BundleError`] whose text starts with `policy bundle refused`, so that
//! the function errors (and its error alarm fires) rather than acting on a
//! policy nobody reviewed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::message::{TemplateError, Templates};

/// The name of the manifest inside the archive.
pub const MANIFEST: &str = "manifest.json";
/// The bundle format this code writes and reads.
pub const FORMAT: u32 = 1;

/// What a bundle says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The Git revision of the policy repository it was built from.
    pub revision: String,
    /// The policy in force (a path inside the bundle).
    pub policy: String,
    /// Every file of the bundle but the manifest, sorted by path.
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub bytes: u64,
}

/// A bundle that checked: every file is listed and matches its hash.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    pub manifest: Manifest,
    /// SHA-256 of the whole archive, for logs and the audit trail.
    pub sha256: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A verified bundle's policy and templates, ready for the sweep.
pub struct LoadedBundle {
    pub policy: policy_lang::Policy,
    pub templates: Templates,
    /// The Git revision, recorded on every action.
    pub revision: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("policy bundle refused: it is not a readable tar archive: {0}")]
    Archive(std::io::Error),
    #[error("policy bundle refused: it has no {MANIFEST}")]
    NoManifest,
    #[error("policy bundle refused: {MANIFEST} is not valid: {0}")]
    BadManifest(String),
    #[error("policy bundle refused: `{path}` is listed in the manifest but not in the bundle")]
    Missing { path: String },
    #[error(
        "policy bundle refused: `{path}` does not match the manifest (SHA-256 {actual}, manifest says {expected})"
    )]
    Mismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("policy bundle refused: `{path}` is in the bundle but not in the manifest")]
    Unlisted { path: String },
    #[error("policy bundle refused: `{path}` is not a plain relative path")]
    UnsafePath { path: String },
    /// An archive entry that is not a plain file (a symbolic or hard link,
    /// a device): it could point outside the folder it is unpacked in.
    #[error(
        "policy bundle refused: `{path}` is a {kind}, not a plain file; a bundle holds the \
         policy folder's own files only"
    )]
    NotAFile { path: String, kind: String },
    /// A file of the policy folder that is a symbolic link: it may read a
    /// file from outside the folder, which would then be bundled and mailed.
    #[error(
        "cannot build the bundle: {} is a symbolic link{}; a policy folder's files must be in \
         it, so that what is reviewed is what is sent: replace the link with the file itself",
        path.display(),
        target.as_ref().map(|t| format!(" (to {})", t.display())).unwrap_or_default()
    )]
    Link {
        path: PathBuf,
        target: Option<PathBuf>,
    },
    #[error("policy bundle refused: the policy `{policy}` does not compile:\n{diagnostics}")]
    Policy { policy: String, diagnostics: String },
    #[error("policy bundle refused: its templates do not load: {0}")]
    Templates(TemplateError),
    #[error("cannot build the bundle: {0}")]
    Build(String),
    #[error("cannot write the bundle's files under {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The files a bundle of `dir` holds: `*.policy` at the top and everything
/// under `templates/` (the layouts in `templates/_layout/` too), hidden
/// files excluded, as sorted `/` paths. A symbolic link among them is
/// refused ([`BundleError::Link`]).
pub fn bundle_files(dir: &Path) -> Result<Vec<String>, BundleError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BundleError::Build(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::Build(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with('.') {
            continue;
        }
        let bundled = name.ends_with(".policy") || name == "templates";
        if bundled {
            refuse_link(&path, &entry)?;
        }
        if path.is_file() && name.ends_with(".policy") {
            out.push(name);
        } else if path.is_dir() && name == "templates" {
            walk(&path, "templates", &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), BundleError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BundleError::Build(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::Build(e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = format!("{prefix}/{name}");
        let path = entry.path();
        refuse_link(&path, &entry)?;
        if path.is_dir() {
            walk(&path, &rel, out)?;
        } else if path.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// [`BundleError::Link`] when the entry is a symbolic link.
fn refuse_link(path: &Path, entry: &std::fs::DirEntry) -> Result<(), BundleError> {
    let kind = entry
        .file_type()
        .map_err(|e| BundleError::Build(format!("cannot read {}: {e}", path.display())))?;
    if kind.is_symlink() {
        return Err(BundleError::Link {
            path: path.to_path_buf(),
            target: std::fs::read_link(path).ok(),
        });
    }
    Ok(())
}

/// Builds the bundle of a policy folder. `policy` names the policy in force
/// (a `.policy` file of the folder); without it the folder must hold exactly
/// one. The caller checks the policy first (`collect bundle` runs the checks
/// of `collect check`); this function only refuses what cannot be bundled.
pub fn build(dir: &Path, revision: &str, policy: Option<&str>) -> Result<Vec<u8>, BundleError> {
    let revision = revision.trim();
    if revision.is_empty() {
        return Err(BundleError::Build("the revision is empty".to_string()));
    }
    let paths = bundle_files(dir)?;
    let policies: Vec<&String> = paths.iter().filter(|p| p.ends_with(".policy")).collect();
    let policy = match (policy, policies.as_slice()) {
        (Some(p), _) => {
            let p = p.trim_start_matches("./").to_string();
            if !paths.contains(&p) {
                return Err(BundleError::Build(format!(
                    "`{p}` is not a policy file of {}",
                    dir.display()
                )));
            }
            p
        }
        (None, [only]) => (*only).clone(),
        (None, []) => {
            return Err(BundleError::Build(format!(
                "{} holds no `.policy` file",
                dir.display()
            )));
        }
        (None, many) => {
            return Err(BundleError::Build(format!(
                "{} holds several policies ({}); say which is in force with --policy",
                dir.display(),
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let mut contents = Vec::new();
    for p in &paths {
        let bytes = std::fs::read(dir.join(p))
            .map_err(|e| BundleError::Build(format!("cannot read {p}: {e}")))?;
        contents.push((p.clone(), bytes));
    }
    let manifest = Manifest {
        format: FORMAT,
        revision: revision.to_string(),
        policy,
        files: contents
            .iter()
            .map(|(path, bytes)| ManifestFile {
                path: path.clone(),
                sha256: sha256_hex(bytes),
                bytes: bytes.len() as u64,
            })
            .collect(),
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BundleError::Build(format!("cannot write the manifest: {e}")))?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let mut append = |path: &str, bytes: &[u8]| -> Result<(), BundleError> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes)
            .map_err(|e| BundleError::Build(format!("cannot add {path}: {e}")))
    };
    append(MANIFEST, &manifest_json)?;
    for (path, bytes) in &contents {
        append(path, bytes)?;
    }
    builder
        .into_inner()
        .map_err(|e| BundleError::Build(e.to_string()))
}

fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Checks a bundle: the manifest lists every file with its hash, nothing
/// is missing, altered or added, and every path is a plain relative path.
pub fn verify(bytes: &[u8]) -> Result<VerifiedBundle, BundleError> {
    let mut archive = tar::Archive::new(bytes);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    for entry in archive.entries().map_err(BundleError::Archive)? {
        let mut entry = entry.map_err(BundleError::Archive)?;
        let path = entry
            .path()
            .map_err(BundleError::Archive)?
            .to_string_lossy()
            .into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular => {}
            tar::EntryType::Directory => continue,
            other => {
                let kind = match other {
                    tar::EntryType::Symlink => "symbolic link".to_string(),
                    tar::EntryType::Link => "hard link".to_string(),
                    other => format!("{other:?} entry").to_lowercase(),
                };
                return Err(BundleError::NotAFile { path, kind });
            }
        }
        if !safe_path(&path) {
            return Err(BundleError::UnsafePath { path });
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(BundleError::Archive)?;
        if path == MANIFEST {
            manifest_bytes = Some(content);
        } else if files.insert(path.clone(), content).is_some() {
            return Err(BundleError::BadManifest(format!(
                "`{path}` is in the archive twice"
            )));
        }
    }
    let manifest_bytes = manifest_bytes.ok_or(BundleError::NoManifest)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BundleError::BadManifest(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(BundleError::BadManifest(format!(
            "format {} is not the supported format {FORMAT}",
            manifest.format
        )));
    }
    if manifest.revision.trim().is_empty() {
        return Err(BundleError::BadManifest(
            "the revision is empty".to_string(),
        ));
    }
    let mut listed = std::collections::BTreeSet::new();
    for f in &manifest.files {
        if !safe_path(&f.path) {
            return Err(BundleError::UnsafePath {
                path: f.path.clone(),
            });
        }
        let Some(content) = files.get(&f.path) else {
            return Err(BundleError::Missing {
                path: f.path.clone(),
            });
        };
        let actual = sha256_hex(content);
        if !actual.eq_ignore_ascii_case(&f.sha256) || content.len() as u64 != f.bytes {
            return Err(BundleError::Mismatch {
                path: f.path.clone(),
                expected: f.sha256.clone(),
                actual,
            });
        }
        listed.insert(f.path.as_str());
    }
    if let Some(extra) = files.keys().find(|k| !listed.contains(k.as_str())) {
        return Err(BundleError::Unlisted {
            path: extra.clone(),
        });
    }
    if !files.contains_key(&manifest.policy) {
        return Err(BundleError::Missing {
            path: manifest.policy.clone(),
        });
    }
    Ok(VerifiedBundle {
        manifest,
        sha256: sha256_hex(bytes),
        files,
    })
}

/// Templates that loaded, as the language checker sees them.
struct Catalog<'a>(&'a Templates);

impl policy_lang::TemplateCatalog for Catalog<'_> {
    fn has_template(&self, name: &str) -> bool {
        self.0.languages(name).iter().any(|l| l == "en")
    }
    fn names(&self) -> Vec<String> {
        self.0
            .names()
            .into_iter()
            .filter(|n| self.has_template(n))
            .collect()
    }
}

impl VerifiedBundle {
    /// Writes the files under `dir` (the templates are read from files)
    /// and compiles the policy in force. The templates load with their
    /// layouts from the bundle alone: a body that extends a layout the
    /// bundle does not hold refuses the bundle.
    pub fn load(&self, dir: &Path) -> Result<LoadedBundle, BundleError> {
        let io = |source| BundleError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        for (path, bytes) in &self.files {
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&target, bytes).map_err(io)?;
        }
        let templates = Templates::load(&dir.join("templates")).map_err(BundleError::Templates)?;
        let source = self
            .files
            .get(&self.manifest.policy)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let name = self.manifest.policy.clone();
        let policy = match policy_lang::load(&source, &name, Some(&Catalog(&templates))) {
            Ok((policy, _warnings)) => policy,
            Err(diags) => {
                return Err(BundleError::Policy {
                    policy: name,
                    diagnostics: policy_lang::diagnostic::render(&diags, &source, false),
                });
            }
        };
        Ok(LoadedBundle {
            policy,
            templates,
            revision: self.manifest.revision.clone(),
            sha256: self.sha256.clone(),
        })
    }
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

    fn policy_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policy")
    }

    /// Rewrites one file of a bundle, keeping the manifest as it was.
    fn tamper(bytes: &[u8], path: &str, content: &[u8]) -> Vec<u8> {
        let mut archive = tar::Archive::new(bytes);
        let mut out = tar::Builder::new(Vec::new());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if name == path {
                data = content.to_vec();
            }
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            out.append_data(&mut header, &name, data.as_slice())
                .unwrap();
        }
        out.into_inner().unwrap()
    }

    #[test]
    fn a_bundle_of_the_policy_folder_verifies_and_loads() {
        let bytes = build(&policy_dir(), "abc123", None).unwrap();
        assert_eq!(bytes, build(&policy_dir(), "abc123", None).unwrap());
        let bundle = verify(&bytes).unwrap();
        assert_eq!(bundle.manifest.revision, "abc123");
        assert_eq!(bundle.manifest.policy, "standard-net30.policy");
        assert!(bundle.files.keys().any(|k| k.starts_with("templates/")));
        assert!(!bundle.files.keys().any(|k| k.ends_with(".toml")));
        let dir = tempfile::tempdir().unwrap();
        let loaded = bundle.load(dir.path()).unwrap();
        assert_eq!(loaded.revision, "abc123");
        assert!(!loaded.templates.names().is_empty());
    }

    #[test]
    fn the_layout_travels_in_the_bundle() {
        let layout = "templates/_layout/email.html";
        let bytes = build(&policy_dir(), "abc123", None).unwrap();
        let bundle = verify(&bytes).unwrap();
        let on_disk = std::fs::read(policy_dir().join(layout)).unwrap();
        assert_eq!(bundle.files.get(layout), Some(&on_disk));
        let listed = bundle
            .manifest
            .files
            .iter()
            .find(|f| f.path == layout)
            .unwrap();
        assert_eq!(listed.sha256, sha256_hex(&on_disk));

        // The sweep renders from the bundle alone, layout included, exactly
        // as from the checkout.
        let dir = tempfile::tempdir().unwrap();
        let loaded = bundle.load(dir.path()).unwrap();
        assert_eq!(
            loaded.templates.layouts(),
            [
                "_layout/email.html",
                "_layout/invoices-de.txt",
                "_layout/invoices-en.txt"
            ]
        );
        let checkout = Templates::load(&policy_dir().join("templates")).unwrap();
        let mut ctx = crate::message::MessageContext::sample();
        ctx.plan = None;
        for (name, lang) in [("friendly-reminder", "en"), ("firm-notice", "de")] {
            assert_eq!(
                loaded.templates.render(name, lang, &ctx).unwrap(),
                checkout.render(name, lang, &ctx).unwrap()
            );
        }

        // An altered layout is refused like any other file.
        let bad = tamper(&bytes, layout, b"<p>{{ customer.name }}</p>");
        assert!(matches!(verify(&bad), Err(BundleError::Mismatch { path, .. }) if path == layout));
    }

    #[test]
    fn a_body_whose_layout_is_not_in_the_bundle_refuses_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("policy");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            policy_dir().join("standard-net30.policy"),
            dir.join("standard-net30.policy"),
        )
        .unwrap();
        let from = policy_dir().join("templates");
        for file in bundle_files(&policy_dir()).unwrap() {
            let Some(rel) = file.strip_prefix("templates/") else {
                continue;
            };
            if rel.starts_with("_layout/") {
                continue;
            }
            let target = dir.join("templates").join(rel);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(from.join(rel), target).unwrap();
        }
        let bundle = verify(&build(&dir, "abc123", None).unwrap()).unwrap();
        assert!(!bundle.files.keys().any(|k| k.contains("_layout")));
        let out = tempfile::tempdir().unwrap();
        let Err(err) = bundle.load(out.path()) else {
            panic!("a bundle without the layout its bodies extend loaded");
        };
        let text = err.to_string();
        assert!(
            matches!(
                &err,
                BundleError::Templates(TemplateError::MissingLayout { .. })
            ),
            "{err:?}"
        );
        assert!(
            text.starts_with("policy bundle refused: its templates do not load: ")
                && text.contains(
                    "body.html:1: `_layout/email.html` does not exist: there is no file "
                )
                && text.contains(
                    &out.path()
                        .join("templates")
                        .join("_layout")
                        .join("email.html")
                        .display()
                        .to_string()
                ),
            "{text}"
        );
    }

    #[test]
    fn a_tampered_bundle_is_refused() {
        let bytes = build(&policy_dir(), "abc123", None).unwrap();
        let bad = tamper(&bytes, "standard-net30.policy", b"policy \"evil\" { }\n");
        let err = verify(&bad).unwrap_err();
        assert!(matches!(err, BundleError::Mismatch { .. }), "{err}");
        assert!(err.to_string().starts_with("policy bundle refused"));

        // An extra file nobody listed.
        let mut archive = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(3);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, "templates/x/en/evil.txt", &b"bad"[..])
            .unwrap();
        let mut more = bytes.clone();
        // Drop the two zero blocks that end the archive, then append.
        more.truncate(more.len() - 1024);
        more.extend(archive.into_inner().unwrap());
        assert!(matches!(verify(&more), Err(BundleError::Unlisted { .. })));

        assert!(matches!(
            verify(b"not a tar file at all, sorry"),
            Err(BundleError::Archive(_) | BundleError::NoManifest)
        ));
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_path("templates/a/en/body.txt"));
        assert!(!safe_path("../etc/passwd"));
        assert!(!safe_path("/etc/passwd"));
        assert!(!safe_path("a/./b"));
        assert!(!safe_path(""));
    }

    /// A copy of the policy folder to break.
    fn policy_copy() -> tempfile::TempDir {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                let target = to.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    copy(&entry.path(), &target);
                } else {
                    std::fs::copy(entry.path(), target).unwrap();
                }
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        copy(&policy_dir(), tmp.path());
        tmp
    }

    /// `body.txt` → `/etc/passwd` in the policy folder: not bundled.
    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_in_the_policy_folder_is_not_bundled() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("passwd");
        std::fs::write(&secret, "root:x:0:0\n").unwrap();
        let folder = policy_copy();
        let body = folder
            .path()
            .join("templates/friendly-reminder/en/body.txt");
        assert!(
            body.is_file(),
            "the standard policy's friendly reminder moved"
        );
        std::fs::remove_file(&body).unwrap();
        std::os::unix::fs::symlink(&secret, &body).unwrap();
        let err = build(folder.path(), "abc123", None).unwrap_err();
        assert!(
            matches!(&err, BundleError::Link { path, .. } if path == &body),
            "{err:?}"
        );
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
    }

    /// One raw tar entry: `name` written into the header as it is (the tar
    /// crate's builder would refuse `..`), of type `kind`.
    fn raw_entry(out: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(kind);
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_cksum();
        out.append(&header, data).unwrap();
    }

    /// A bundle made by hand (not by `build`) with a link or a path leaving
    /// the folder is refused when loaded, before anything is written.
    #[test]
    fn a_bundle_with_a_link_or_a_path_out_of_it_is_refused() {
        let good = build(&policy_dir(), "abc123", None).unwrap();
        let cases = [
            (
                "templates/friendly-reminder/en/body.txt",
                tar::EntryType::Symlink,
                "symbolic link",
            ),
            (
                "templates/friendly-reminder/en/body.txt",
                tar::EntryType::Link,
                "hard link",
            ),
            (
                "../../etc/cron.d/x",
                tar::EntryType::Regular,
                "not a plain relative path",
            ),
            (
                "/etc/cron.d/x",
                tar::EntryType::Regular,
                "not a plain relative path",
            ),
            (
                "templates\\..\\x",
                tar::EntryType::Regular,
                "not a plain relative path",
            ),
        ];
        for (name, kind, says) in cases {
            let mut out = tar::Builder::new(Vec::new());
            raw_entry(
                &mut out,
                name,
                kind,
                if kind == tar::EntryType::Regular {
                    b"x"
                } else {
                    b""
                },
            );
            let mut archive = tar::Archive::new(good.as_slice());
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                out.append(&header, data.as_slice()).unwrap();
            }
            let bytes = out.into_inner().unwrap();
            let err = verify(&bytes)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            let text = err.to_string();
            assert!(text.starts_with("policy bundle refused"), "{text}");
            assert!(text.contains(says) && text.contains(name), "{name}: {text}");
        }
    }
}
