//! Finding policy files and their templates on disk.

use anyhow::{Context, Result, bail};
use collect_delivery::message::templates::LAYOUT_DIR;
use policy_lang::{Diagnostic, Policy, TemplateCatalog};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Every file under `paths` whose name ends with `suffix`, sorted; a path
/// that is itself a file is taken as it is.
pub fn find(paths: &[PathBuf], suffix: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, suffix, &mut out)
                .with_context(|| format!("cannot read folder {}", p.display()))?;
        } else {
            bail!("{} does not exist", p.display());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "target" && !n.to_string_lossy().starts_with('.'))
            {
                walk(&path, suffix, out)?;
            }
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    Ok(())
}

/// The templates available to a policy: the folders of `templates/` beside
/// it, but the layout folder (`_layout/`), which holds no template.
pub struct TemplateDir {
    names: HashSet<String>,
}

impl TemplateDir {
    pub fn beside(policy: &Path) -> TemplateDir {
        let dir = policy.parent().unwrap_or(Path::new(".")).join("templates");
        let names = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != LAYOUT_DIR)
                    .collect()
            })
            .unwrap_or_default();
        TemplateDir { names }
    }
}

impl TemplateCatalog for TemplateDir {
    fn has_template(&self, name: &str) -> bool {
        self.names.contains(name)
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names.iter().cloned().collect();
        v.sort();
        v
    }
}

/// Reads a policy file as text.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads and compiles a policy file, checking its templates; on errors the
/// diagnostics are rendered into the error.
pub fn load(path: &Path) -> Result<Policy> {
    let source = read(path)?;
    let name = path.display().to_string();
    let catalog = TemplateDir::beside(path);
    match policy_lang::load(&source, &name, Some(&catalog)) {
        Ok((policy, _warnings)) => Ok(policy),
        Err(diags) => {
            let errors = diags.iter().filter(|d| d.is_error()).count();
            bail!(
                "{name} has {errors} error(s); run `collect check {name}`\n{}",
                policy_lang::diagnostic::render(&diags, &source, false)
            )
        }
    }
}

/// Whether to colour output: only on a terminal, and never with NO_COLOR.
pub fn color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

pub fn count(diags: &[Diagnostic]) -> (usize, usize) {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    (errors, diags.len() - errors)
}
