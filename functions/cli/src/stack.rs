//! A deployed stack as the place `collect tasks`, `collect explain` and
//! `collect audit` read and act on, instead of the home: its DynamoDB
//! table through the same `Ledger` port the home's SQLite file implements
//! (`collect_aws::dynamo::Dynamo`), and its S3 bucket for the policy
//! bundles and the risk model the sweep ran with.
//!
//! `--table NAME --bucket NAME` are the stack's `TableName` and
//! `BucketName` outputs (`aws cloudformation describe-stacks --stack-name S
//! --query 'Stacks[0].Outputs'`). Credentials and region come from the AWS
//! SDK's default chain (environment, profile, SSO, instance role), and
//! `AWS_ENDPOINT_URL` points every client at another endpoint (a local
//! one in the tests). An auditor's read-only credentials list, explain and
//! audit; an act they may not take fails with AWS's refusal, said plainly.

use collect_aws::artifacts::Artifacts;
use collect_aws::config::Clients;
use collect_aws::dynamo::Dynamo;
use collect_delivery::explain::ExplainScorer;
use collect_engine::sweep::RiskScorer;
use std::future::Future;
use std::path::PathBuf;

/// The stack's template default for `VirtualShards` (`infra/template.yaml`).
pub const TEMPLATE_SHARDS: u32 = collect_aws::keys::DEFAULT_VIRTUAL_SHARDS;

/// Where to read: the home (no flag) or a deployed stack.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StackArgs {
    /// Work on a deployed stack instead of the home: its DynamoDB table
    /// (the stack's `TableName` output). Credentials, region and
    /// AWS_ENDPOINT_URL come from the AWS SDK's default chain.
    #[arg(long, env = "COLLECT_TABLE", global = true)]
    pub table: Option<String>,
    /// The deployed stack's S3 bucket (its `BucketName` output): the
    /// policy bundles and risk model the sweep ran with, which explanations
    /// and approvals' re-checks use.
    #[arg(long, env = "COLLECT_BUCKET", global = true)]
    pub bucket: Option<String>,
    /// How many virtual shards the stack spreads customers and open work
    /// over: its `VirtualShards` parameter (the template's default is 1024;
    /// a stack created before virtual shards: its `Shards`); fewer than the
    /// stack's would miss some.
    #[arg(long, default_value_t = TEMPLATE_SHARDS, global = true)]
    pub shards: u32,
}

/// The stack's table or bucket cannot be used as given.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "--bucket {bucket} names the stack's bucket, but not its table.\n\
         help: add --table NAME (the stack's `TableName` output)"
    )]
    NoTable { bucket: String },
    #[error(
        "this needs the stack's bucket as well as its table (the policy bundles and model \
         the sweep ran with).\n\
         help: add --bucket NAME (the stack's `BucketName` output)"
    )]
    NoBucket,
    #[error(
        "--shards {0}: a stack has from 1 to 4096 virtual shards (its `VirtualShards` parameter)"
    )]
    Shards(u32),
    #[error("cannot start the AWS client's runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Aws(#[from] collect_aws::AwsError),
}

/// A deployed stack, connected: its ledger and its artifacts.
pub struct Stack {
    runtime: tokio::runtime::Runtime,
    pub dynamo: Dynamo,
    pub artifacts: Option<Artifacts>,
}

impl StackArgs {
    /// The stack named, connected with the default credentials chain;
    /// `None` when no stack was named.
    pub fn connect(&self) -> Result<Option<Stack>, StackError> {
        let Some(table) = self.table.as_deref() else {
            return match &self.bucket {
                Some(bucket) => Err(StackError::NoTable {
                    bucket: bucket.clone(),
                }),
                None => Ok(None),
            };
        };
        if !(1..=4096).contains(&self.shards) {
            return Err(StackError::Shards(self.shards));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StackError::Runtime)?;
        let clients = runtime.block_on(Clients::from_env());
        Ok(Some(Stack {
            dynamo: Dynamo::new(clients.dynamodb.clone(), table, self.shards),
            artifacts: self
                .bucket
                .as_deref()
                .map(|b| Artifacts::new(clients.s3.clone(), b)),
            runtime,
        }))
    }
}

impl Stack {
    /// Runs one of the port's futures to its end.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The bucket, for what needs the bundles.
    pub fn artifacts(&self) -> Result<&Artifacts, StackError> {
        self.artifacts.as_ref().ok_or(StackError::NoBucket)
    }

    /// Where bundles read from the bucket are unpacked (their templates).
    pub fn scratch(&self) -> PathBuf {
        std::env::temp_dir().join(format!("collect-stack-{}", std::process::id()))
    }

    /// The risk scorer the stack's sweep uses: its current model, or the
    /// fallback when none was promoted.
    pub fn scorer(&self) -> Result<StackScorer, StackError> {
        let artifacts = self.artifacts()?;
        let scorer = self.block_on(collect_aws::train::load_scorer(artifacts))?;
        Ok(StackScorer {
            scorer,
            bucket: artifacts.bucket().to_string(),
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.scratch());
    }
}

/// The stack's scorer, as explanations show it.
pub struct StackScorer {
    scorer: Box<dyn RiskScorer + Send + Sync>,
    bucket: String,
}

impl ExplainScorer for StackScorer {
    fn scorer(&self) -> &dyn RiskScorer {
        self.scorer.as_ref()
    }
    fn describe(&self) -> String {
        format!(
            "{} v{} (the current model of s3://{}, or the fallback when none is promoted)",
            self.scorer.name(),
            self.scorer.version(),
            self.bucket
        )
    }
}
