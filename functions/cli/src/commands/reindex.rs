//! `collect reindex --table NAME --shards N [--resume CURSOR]`: rewrites a
//! deployed stack's index keys for `N` virtual shards
//! ([`collect_aws::reshard`]): after deploying a new `VirtualShards`, or to
//! upgrade a stack created before virtual shards. Resumable: each page
//! prints its cursor, and a run from the start again writes nothing
//! already right.

use crate::stack::StackArgs;
use anyhow::{Result, bail};
use std::process::ExitCode;

/// Rewrites the stack's index keys (`GSI1PK`) for `--shards` virtual
/// shards, the stack's new `VirtualShards`; resumable with `--resume`.
#[derive(clap::Args)]
pub struct Args {
    /// Go on from this cursor (the last `cursor` a stopped re-index
    /// printed); none: from the start.
    #[arg(long, value_name = "CURSOR")]
    resume: Option<String>,
    /// Run one segment of a parallel re-index, `I/N` (e.g. `0/4`): run one
    /// process per segment, side by side.
    #[arg(long)]
    segment: Option<String>,
    #[command(flatten)]
    stack: StackArgs,
}

fn segment(text: &str) -> Result<(i32, i32)> {
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse::<i32>().ok()?, n.trim().parse::<i32>().ok()?)));
    match parsed {
        Some((i, n)) if n >= 1 && (0..n).contains(&i) => Ok((i, n)),
        _ => bail!("--segment {text}: give I/N with 0 <= I < N, e.g. 0/4"),
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let segment = args.segment.as_deref().map(segment).transpose()?;
    let Some(stack) = args.stack.connect()? else {
        bail!(
            "reindex works on a deployed stack's table.\n\
             help: add --table NAME (the stack's `TableName` output) and --shards N (its new `VirtualShards`)"
        );
    };
    let shards = args.stack.shards;
    let total = stack.block_on(collect_aws::reshard::reindex(
        &stack.dynamo,
        shards,
        segment,
        args.resume.clone(),
        |page| {
            println!(
                "scanned {:>6}  rewritten {:>6}  unchanged {:>6}  changed meanwhile {:>4}  cursor {}",
                page.scanned,
                page.rewritten,
                page.unchanged,
                page.changed_meanwhile,
                page.cursor.as_deref().unwrap_or("(done)")
            );
        },
    ))?;
    println!(
        "re-indexed for {shards} virtual shards: {} items with an index key, {} rewritten, {} already right, {} changed meanwhile",
        total.scanned, total.rewritten, total.unchanged, total.changed_meanwhile
    );
    for (pk, sk) in &total.skipped {
        eprintln!("left alone (an index key this re-index does not know): {pk} / {sk}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_segment_is_i_of_n() {
        assert_eq!(super::segment("0/4").unwrap(), (0, 4));
        assert_eq!(super::segment("3/4").unwrap(), (3, 4));
        for bad in ["4/4", "-1/4", "1", "a/b", "0/0"] {
            assert!(super::segment(bad).is_err(), "{bad}");
        }
    }
}
