//! One file per subcommand of `collect`, as `collect --help` lists them:
//! each holds its arguments (`Args`, with the flags, defaults and help
//! texts) and one `run` that calls into the modules below it. No command
//! calls another; what two commands share lives below them.

pub mod audit;
pub mod bundle;
pub mod check;
pub mod completions;
pub mod demo;
pub mod diff;
pub mod eval_ibm;
pub mod explain;
pub mod fmt;
pub mod ingest;
pub mod init;
pub mod pay_link;
pub mod reindex;
pub mod report;
pub mod run;
pub mod score;
pub mod serve;
pub mod simulate;
pub mod synth;
pub mod tasks;
pub mod template_diff;
pub mod test;
pub mod train;
