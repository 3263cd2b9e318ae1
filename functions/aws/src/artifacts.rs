//! The S3 adapter: policy bundles and model artifacts.
//!
//! Layout of the bucket (versioning on, so every overwrite is kept):
//! - `bundles/<revision>.tar`: a policy bundle, as `collect bundle` wrote it;
//! - `bundles/by-revision/<bundle revision>.tar`: the same bundle by the
//!   bundle revision every action records ([`Artifacts::publish_bundle`] writes both),
//!   read back for `explain` through the `BundleStore` port;
//! - `bundles/current`: JSON `{"key": "bundles/<revision>.tar", "revision": …}`,
//!   the bundle in force, moved by CI after a merge;
//! - `models/<version>/model.json`: a trained model, never overwritten;
//! - `models/current`: JSON `{"key": …, "version": …, "sha256": …}`, moved
//!   by the train function only when a new model is promoted.
//!
//! **A pointer that does not exist yet** (a new stack: no bundle published,
//! no model trained) is "not there yet" whatever S3 answers: `404
//! NoSuchKey` when the role may list the bucket's prefix (the template
//! grants `s3:ListBucket` on `bundles/` and `models/`), `403 AccessDenied`
//! when it may not (S3 does not tell a caller without `s3:ListBucket`
//! whether a key exists). The 403 case is logged as a warning carrying
//! [`ACCESS_DENIED_MARKER`] (a metric filter of the template turns it into
//! the `ArtifactAccessDenied` alarm: with the template's grants it never
//! happens, so it means a role lost a permission). Then the sweep scores
//! with the prior late rate, as `collect run` does without a model, and
//! the train function promotes its first model. An object *named by* a
//! pointer that cannot be read stays an error.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

pub use super::error::Denied;
use super::error::{AwsError, CorruptError, EncodeError, NoBundleError, Service, ServiceError};
use collect_delivery::bundle::{self, VerifiedBundle, sha256_hex};

pub const BUNDLE_POINTER: &str = "bundles/current";
pub const MODEL_POINTER: &str = "models/current";

/// The word of the warning logged when S3 answers 403 for a pointer (the
/// template's metric filter `ArtifactAccessDeniedFilter` matches it).
pub const ACCESS_DENIED_MARKER: &str = "ARTIFACT_ACCESS_DENIED";

/// What a read of a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Found(Vec<u8>),
    /// `404 NoSuchKey`: the key does not exist.
    Missing,
    /// `403 AccessDenied`: the key does not exist and the caller may not
    /// list the bucket, or the caller may not read the key.
    Denied(Denied),
}

/// Whether a GetObject error is S3's `AccessDenied` (403).
fn is_access_denied(
    e: &aws_sdk_s3::error::SdkError<GetObjectError, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(se) => {
            se.err().code() == Some("AccessDenied") || se.raw().status().as_u16() == 403
        }
        _ => false,
    }
}

/// What a `current` pointer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    pub key: String,
    /// The bundle's Git revision or the model's version.
    #[serde(alias = "version")]
    pub revision: String,
    /// SHA-256 of the object (checked on load when present).
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Artifacts {
    client: Client,
    bucket: String,
}

fn s3_error<E>(
    operation: &'static str,
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> AwsError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    AwsError::sdk(Service::S3, operation, e)
}

impl Artifacts {
    pub fn new(client: Client, bucket: impl Into<String>) -> Artifacts {
        Artifacts {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A key's bytes; `None` when it does not exist (404). A 403 is an
    /// error here: see [`fetch`](Artifacts::fetch) to tell it apart.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        match self.fetch(key).await? {
            Fetched::Found(bytes) => Ok(Some(bytes)),
            Fetched::Missing => Ok(None),
            Fetched::Denied(denied) => Err(ServiceError::access_denied(
                format!("s3://{}/{key}", self.bucket),
                denied,
            )
            .into()),
        }
    }

    /// A key's bytes, or why there are none (missing, or access denied).
    pub async fn fetch(&self, key: &str) -> Result<Fetched, AwsError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| {
                    ServiceError::unreadable(format!("s3://{}/{key}", self.bucket), e)
                })?;
                Ok(Fetched::Found(data.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => {
                Ok(Fetched::Missing)
            }
            Err(e) if is_access_denied(&e) => {
                let se = e.as_service_error();
                Ok(Fetched::Denied(Denied {
                    code: se
                        .and_then(|se| se.code())
                        .unwrap_or("AccessDenied")
                        .to_string(),
                    message: se
                        .and_then(|se| se.message())
                        .unwrap_or("Access Denied")
                        .to_string(),
                }))
            }
            Err(e) => Err(s3_error("GetObject", e)),
        }
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", e))?;
        Ok(())
    }

    /// A `current` pointer; `None` when it is not there yet, whatever S3
    /// answered (404, or 403 for a role without `s3:ListBucket`).
    async fn pointer(&self, key: &str) -> Result<Option<Pointer>, AwsError> {
        let bytes = match self.fetch(key).await? {
            Fetched::Found(bytes) => bytes,
            Fetched::Missing => {
                tracing::info!(
                    bucket = %self.bucket,
                    key,
                    "s3://{}/{key} does not exist yet",
                    self.bucket
                );
                return Ok(None);
            }
            Fetched::Denied(denied) => {
                let message = denied.to_string();
                tracing::warn!(
                    bucket = %self.bucket,
                    key,
                    s3_answer = %message,
                    "{ACCESS_DENIED_MARKER}: S3 refused to read s3://{}/{key} ({message}); \
                     taken as not there yet. S3 answers 403 for a missing key when the \
                     role may not list the bucket: check the role's s3:ListBucket and \
                     s3:GetObject grants (infra/template.yaml)",
                    self.bucket
                );
                return Ok(None);
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CorruptError::json(format!("s3://{}/{key}", self.bucket), e).into())
    }

    async fn set_pointer(&self, key: &str, p: &Pointer) -> Result<(), AwsError> {
        let bytes = serde_json::to_vec_pretty(p)
            .map_err(|e| EncodeError::new(format!("the pointer s3://{}/{key}", self.bucket), e))?;
        self.put(key, bytes, "application/json").await
    }

    // ------------------------------------------------------------ bundles

    /// Uploads a bundle under its revision and makes it current (what CI
    /// does after a merge; `aws s3 cp` does the same).
    pub async fn publish_bundle(&self, bytes: Vec<u8>) -> Result<Pointer, AwsError> {
        let verified = bundle::verify(&bytes)?;
        let key = format!("bundles/{}.tar", verified.manifest.revision);
        let pointer = Pointer {
            key: key.clone(),
            revision: verified.manifest.revision.clone(),
            sha256: Some(verified.sha256.clone()),
        };
        // Kept by its bundle revision too (what every action records), so
        // `explain` finds the policy and templates that decided an action.
        let by_revision =
            by_revision_key(&collect_delivery::revision::of_manifest(&verified.manifest));
        self.put(&by_revision, bytes.clone(), "application/x-tar")
            .await?;
        self.put(&key, bytes, "application/x-tar").await?;
        self.set_pointer(BUNDLE_POINTER, &pointer).await?;
        Ok(pointer)
    }

    /// The bundle in force, verified. Fails closed: no pointer, no bundle,
    /// a hash that does not match the pointer or the manifest are errors.
    pub async fn current_bundle(&self) -> Result<VerifiedBundle, AwsError> {
        let pointer = self
            .pointer(BUNDLE_POINTER)
            .await?
            .ok_or_else(|| NoBundleError::no_pointer(&self.bucket, BUNDLE_POINTER))?;
        let bytes = self
            .get(&pointer.key)
            .await?
            .ok_or_else(|| NoBundleError::missing(&self.bucket, &pointer.key, BUNDLE_POINTER))?;
        if let Some(expected) = &pointer.sha256 {
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(bundle::BundleError::Mismatch {
                    path: format!("s3://{}/{}", self.bucket, pointer.key),
                    expected: expected.clone(),
                    actual,
                }
                .into());
            }
        }
        Ok(bundle::verify(&bytes)?)
    }

    // ------------------------------------------------------------ models

    /// Stores a model artifact under its version; does not promote it.
    pub async fn put_model(&self, version: &str, bytes: Vec<u8>) -> Result<Pointer, AwsError> {
        let key = format!("models/{version}/model.json");
        let pointer = Pointer {
            key: key.clone(),
            revision: version.to_string(),
            sha256: Some(sha256_hex(&bytes)),
        };
        self.put(&key, bytes, "application/json").await?;
        Ok(pointer)
    }

    /// Makes a stored model the current one.
    pub async fn promote_model(&self, pointer: &Pointer) -> Result<(), AwsError> {
        self.set_pointer(MODEL_POINTER, pointer).await
    }

    pub async fn current_model_pointer(&self) -> Result<Option<Pointer>, AwsError> {
        self.pointer(MODEL_POINTER).await
    }

    /// The current model's bytes, checked against the pointer's hash;
    /// `None` when no model was ever promoted.
    pub async fn current_model(&self) -> Result<Option<(Pointer, Vec<u8>)>, AwsError> {
        let Some(pointer) = self.pointer(MODEL_POINTER).await? else {
            return Ok(None);
        };
        let bytes = self.get(&pointer.key).await?.ok_or_else(|| {
            CorruptError::missing_object(
                format!("s3://{}/{}", self.bucket, pointer.key),
                MODEL_POINTER,
            )
        })?;
        if let Some(expected) = &pointer.sha256 {
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(CorruptError::digest(
                    format!("s3://{}/{}", self.bucket, pointer.key),
                    actual,
                    expected,
                )
                .into());
            }
        }
        Ok(Some((pointer, bytes)))
    }
}

/// Where a bundle is kept by its bundle revision (content addressed).
pub fn by_revision_key(revision: &str) -> String {
    format!("bundles/by-revision/{revision}.tar")
}

/// The bundle store of the AWS side: every bundle published, by its bundle
/// revision (`bundles/by-revision/<revision>.tar`); the reader checks the
/// revision ([`collect_delivery::bundle_store::load_revision`]).
impl collect_delivery::bundle_store::BundleStore for Artifacts {
    async fn get(
        &self,
        revision: &str,
    ) -> Result<Option<Vec<u8>>, collect_delivery::bundle_store::BundleStoreError> {
        if revision.is_empty() || !revision.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Artifacts::get(self, &by_revision_key(revision))
            .await
            .map_err(|e| collect_delivery::bundle_store::BundleStoreError::Storage(e.to_string()))
    }

    fn location(&self, revision: &str) -> String {
        format!("s3://{}/{}", self.bucket, by_revision_key(revision))
    }
}
