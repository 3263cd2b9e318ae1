//! Helpers the end-to-end tests of `collect` share: run the built binary on
//! a home, show what it printed, and a temporary folder to write into.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root: commands run from here, as finance ops run them.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The pay-link key of the tests (a home would otherwise make its own).
pub const KEY: &str = "test-key-test-key-test-key-test-key-0123";

/// `collect --home HOME ARGS` from the workspace root, with the test key and
/// no `COLLECT_HOME` from the environment.
pub fn collect(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--home")
        .arg(home)
        .args(args)
        .current_dir(ROOT)
        .env("NO_COLOR", "1")
        // The tests' books are dated 2027: the clock of the future-date guard.
        .env("COLLECT_TODAY", "2027-12-31")
        .env("COLLECT_PAY_LINK_KEY", KEY)
        .env_remove("COLLECT_HOME")
        .output()
        .unwrap()
}

/// The exit code and everything printed, for assertions and their messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A uniquely named folder under the system temp dir (`tempfile`), removed
/// on drop: the one temporary folder of the tests.
pub struct Temp(tempfile::TempDir);

impl Temp {
    pub fn new(label: &str) -> Temp {
        Temp(
            tempfile::Builder::new()
                .prefix(&format!("collect-{label}-"))
                .tempdir()
                .unwrap(),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Writes `text` to `name` inside the folder, creating subfolders.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}
