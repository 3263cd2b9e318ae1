//! The standard policy folder (`policy/` of the repository: the policy, its
//! tests, its templates and README), embedded in the binary so `collect
//! demo` runs anywhere — after `cargo install`, in an empty folder — and
//! `collect init DIR` can write it out as a starting point.

use anyhow::{Context, Result, bail};
use include_dir::{Dir, DirEntry, include_dir};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
pub fn write_out(dir: &Path, overwrite: bool) -> Result<PathBuf> {
    if !overwrite {
        let existing: Vec<String> = files()
            .iter()
            .map(|(p, _)| dir.join(p))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already holds {} of the standard policy's files (e.g. {}); choose an empty \
                 folder or pass --force to overwrite them",
                dir.display(),
                existing.len(),
                existing.first().map_or("", String::as_str)
            );
        }
    }
    for (path, bytes) in files() {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the folder {}", parent.display()))?;
        }
        std::fs::write(&target, bytes)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(dir.join(POLICY_FILE))
}

/// `collect init DIR`: the standard policy, its tests and templates as a
/// starting point.
pub fn init(dir: &Path, force: bool) -> Result<ExitCode> {
    let policy = write_out(dir, force)?;
    println!(
        "Wrote the standard policy, its tests and {} templates to {}.\n\
         Next:\n  collect check {d}\n  collect test {d}\n  collect demo --policy {p}",
        files()
            .iter()
            .filter(|(p, _)| p.ends_with("subject.txt"))
            .count(),
        dir.display(),
        d = dir.display(),
        p = policy.display()
    );
    Ok(ExitCode::SUCCESS)
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
