#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The crates link what ARCHITECTURE.md says they link, as `cargo tree -e
//! normal` shows it: the pure engine no I/O crate, the sweep, events and
//! queue Lambdas neither SQLite nor the training library, the CLI both
//! ledgers' adapters, and the test kit is never a normal dependency of
//! anything.

use std::collections::BTreeSet;
use std::process::Command;

/// The packages `cargo tree -e normal -p <package>` lists (names only).
fn linked(package: &str) -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn assert_links_none(package: &str, forbidden: &[&str]) {
    let linked = linked(package);
    assert!(linked.contains(package), "{package} is in its own tree");
    let found: Vec<&String> = linked
        .iter()
        .filter(|l| {
            forbidden.iter().any(|f| {
                f.strip_suffix('*')
                    .map_or(l.as_str() == *f, |p| l.starts_with(p))
            })
        })
        .collect();
    assert!(found.is_empty(), "{package} links {found:?}");
}

const IO: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "smartcore",
    "tokio",
    "aws-config",
    "aws-sdk-*",
    "hyper",
    "lambda_runtime",
];

#[test]
fn the_engine_links_no_io_crate() {
    assert_links_none("collect-engine", IO);
    assert_links_none("policy-lang", IO);
}

#[test]
fn delivery_and_scoring_link_no_adapter() {
    assert_links_none("collect-delivery", IO);
    assert_links_none("collect-model", IO);
}

/// The work queue's router serves SQLite locally and DynamoDB on AWS: it
/// names neither (the host gives it the ledger), nor the training library.
#[test]
fn the_work_queue_links_no_adapter() {
    assert_links_none(
        "collect-web",
        &[
            "rusqlite",
            "libsqlite3-sys",
            "collect-sqlite",
            "collect-aws",
            "aws-sdk-*",
            "smartcore",
            "collect-training",
        ],
    );
}

#[test]
fn the_sweep_and_events_lambdas_link_neither_sqlite_nor_the_training_library() {
    for lambda in ["collect-sweep", "collect-events"] {
        assert_links_none(
            lambda,
            &[
                "rusqlite",
                "libsqlite3-sys",
                "smartcore",
                "collect-sqlite",
                "collect-training",
            ],
        );
    }
    assert_links_none(
        "collect-train",
        &["rusqlite", "libsqlite3-sys", "collect-sqlite"],
    );
}

/// The work queue Lambda links the web router and the AWS adapters, and
/// nothing that trains or opens SQLite (what `collect serve` needs stays
/// in the CLI).
#[test]
fn the_queue_lambda_links_neither_sqlite_nor_the_training_library() {
    assert_links_none(
        "collect-queue",
        &[
            "rusqlite",
            "libsqlite3-sys",
            "smartcore",
            "collect-sqlite",
            "collect-training",
            "collect-cli",
        ],
    );
    let linked = linked("collect-queue");
    for needed in ["collect-web", "collect-aws", "lambda_http"] {
        assert!(
            linked.contains(needed),
            "collect-queue does not link {needed}"
        );
    }
}

/// The CLI works on a home (SQLite) and on a deployed stack (`collect tasks
/// --table T --bucket B`): it links both ledgers' adapters. No Lambda links
/// the CLI.
#[test]
fn the_cli_links_both_ledgers_and_no_lambda_links_the_cli() {
    let cli = linked("collect-cli");
    for adapter in ["collect-sqlite", "collect-aws"] {
        assert!(cli.contains(adapter), "collect-cli links {adapter}");
    }
    for lambda in [
        "collect-sweep",
        "collect-events",
        "collect-train",
        "collect-queue",
    ] {
        assert_links_none(lambda, &["collect-cli"]);
    }
}

#[test]
fn the_test_kit_is_never_a_normal_dependency() {
    for package in [
        "collect-cli",
        "collect-sweep",
        "collect-events",
        "collect-train",
        "collect-queue",
        "collect-web",
        "collect-aws",
        "collect-sqlite",
        "collect-delivery",
        "collect-engine",
        "collect-model",
        "collect-training",
        "collect-generator",
        "collect-web",
    ] {
        assert_links_none(package, &["collect-testkit"]);
    }
}
