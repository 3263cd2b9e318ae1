//! The standard policy folder (`policy/` of the repository: the policy, its
//! tests, its templates and README), embedded in the binary so `collect
//! demo` runs anywhere — after `cargo install`, in an empty folder — and
//! `collect init DIR` can write it out as a starting point.

use include_dir::{Dir, DirEntry, include_dir};
use std::path::{Path, PathBuf};

/// The standard policy could not be written out; nothing was overwritten.
#[derive(Debug, thiserror::Error)]
pub enum WriteOutError {
    #[error(
        "{} already holds {} of the standard policy's files (e.g. {}); choose an empty \
         folder or pass --force to overwrite them",
        dir.display(),
        existing.len(),
        existing.first().map_or("", String::as_str)
    )]
    Occupied {
        dir: PathBuf,
        /// The files already there.
        existing: Vec<String>,
    },
    #[error("cannot create the folder {}", dir.display())]
    CreateFolder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

static POLICY_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../policy");

/// The standard policy's file name inside the folder.
pub const POLICY_FILE: &str = "standard-net30.policy";

/// Every embedded file: its path relative to the folder, and its bytes.
pub fn files() -> Vec<(&'static Path, &'static [u8])> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<(&'static Path, &'static [u8])>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(d) => walk(d, out),
                DirEntry::File(f) => out.push((f.path(), f.contents())),
            }
        }
    }
    let mut out = Vec::new();
    walk(&POLICY_DIR, &mut out);
    out.sort_by_key(|(p, _)| *p);
    out
}

/// Writes the embedded folder into `dir` (created when missing) and
/// returns the path of the standard policy in it. Existing files are
/// overwritten only when `overwrite`; otherwise finding one is an error.
pub fn write_out(dir: &Path, overwrite: bool) -> Result<PathBuf, WriteOutError> {
    if !overwrite {
        let existing: Vec<String> = files()
            .iter()
            .map(|(p, _)| dir.join(p))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(WriteOutError::Occupied {
                dir: dir.to_path_buf(),
                existing,
            });
        }
    }
    for (path, bytes) in files() {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| WriteOutError::CreateFolder {
                dir: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&target, bytes).map_err(|source| WriteOutError::Write {
            path: target.clone(),
            source,
        })?;
    }
    Ok(dir.join(POLICY_FILE))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_folder_holds_the_policy_and_every_template() {
        let names: Vec<String> = files()
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert!(names.contains(&POLICY_FILE.to_string()), "{names:?}");
        assert!(names.contains(&"templates/legal-notice/de/body.txt".to_string()));
        // `collect init` writes the layout the HTML bodies extend.
        assert!(names.contains(&"templates/_layout/email.html".to_string()));
        let on_disk = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policy/standard-net30.policy"
        ))
        .unwrap();
        let embedded = files()
            .into_iter()
            .find(|(p, _)| *p == Path::new(POLICY_FILE))
            .unwrap()
            .1;
        assert_eq!(embedded, on_disk.as_slice());
    }
}
