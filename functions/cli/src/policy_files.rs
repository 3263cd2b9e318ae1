//! Finding policy files and their templates on disk, reading them, and
//! loading a policy with the template folder beside it.

use collect_delivery::message::templates::LAYOUT_DIR;
use policy_lang::{Diagnostic, Policy, TemplateCatalog};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A policy file (or a folder of them) that cannot be found, read or
/// compiled. A policy with errors carries them rendered, with the command
/// that explains each.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read folder {}", path.display())]
    ReadFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file or folder found in a policy folder that is a symbolic link:
    /// it may read a file from outside the folder.
    #[error(
        "{} is a symbolic link{}: a policy folder's files must be in it, so that what is \
         reviewed is what runs; replace the link with the file itself",
        path.display(),
        target.as_ref().map(|t| format!(" (to {})", t.display())).unwrap_or_default()
    )]
    Link {
        path: PathBuf,
        target: Option<PathBuf>,
    },
    #[error("{name} has {errors} error(s); run `collect check {name}`\n{rendered}")]
    Invalid {
        /// The file as given.
        name: String,
        errors: usize,
        /// Every diagnostic, rendered with its source line.
        rendered: String,
    },
}

/// Every file under `paths` whose name ends with `suffix`, sorted; a path
/// that is itself a file is taken as it is. A symbolic link found in a
/// folder is refused ([`PolicyFileError::Link`]).
pub fn find(paths: &[PathBuf], suffix: &str) -> Result<Vec<PathBuf>, PolicyFileError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, suffix, &mut out)?;
        } else {
            return Err(PolicyFileError::Missing { path: p.clone() });
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) -> Result<(), PolicyFileError> {
    let io = |source| PolicyFileError::ReadFolder {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n == "target" || n.to_string_lossy().starts_with('.'));
        if entry.file_type().map_err(io)?.is_symlink() {
            // Only what would be read: a link under `templates/` is
            // reported by the template checks, with its code.
            if !hidden && (path.is_dir() || path.to_string_lossy().ends_with(suffix)) {
                return Err(PolicyFileError::Link {
                    target: std::fs::read_link(&path).ok(),
                    path,
                });
            }
            continue;
        }
        if path.is_dir() {
            if !hidden {
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
pub fn read(path: &Path) -> Result<String, PolicyFileError> {
    std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads and compiles a policy file, checking its templates; on errors the
/// diagnostics are rendered into the error.
pub fn load(path: &Path) -> Result<Policy, PolicyFileError> {
    let source = read(path)?;
    let name = path.display().to_string();
    let catalog = TemplateDir::beside(path);
    match policy_lang::load(&source, &name, Some(&catalog)) {
        Ok((policy, _warnings)) => Ok(policy),
        Err(diags) => Err(PolicyFileError::Invalid {
            errors: diags.iter().filter(|d| d.is_error()).count(),
            rendered: policy_lang::diagnostic::render(&diags, &source, false),
            name,
        }),
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
