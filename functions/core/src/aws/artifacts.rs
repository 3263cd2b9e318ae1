//! The S3 adapter: policy bundles and model artifacts.
//!
//! Layout of the bucket (versioning on, so every overwrite is kept):
//! - `bundles/<revision>.tar`: a policy bundle, as `collect bundle` wrote it;
//! - `bundles/current`: JSON `{"key": "bundles/<revision>.tar", "revision": …}`,
//!   the bundle in force, moved by CI after a merge;
//! - `models/<version>/model.json`: a trained model, never overwritten;
//! - `models/current`: JSON `{"key": …, "version": …, "sha256": …}`, moved
//!   by the train function only when a new model is promoted.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use super::AwsError;
use super::bundle::{self, VerifiedBundle, sha256_hex};

pub const BUNDLE_POINTER: &str = "bundles/current";
pub const MODEL_POINTER: &str = "models/current";

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

fn s3_error<E, R>(operation: &'static str, e: aws_sdk_s3::error::SdkError<E, R>) -> AwsError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    AwsError::sdk("S3", operation, e)
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

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| AwsError::Service {
                    service: "S3",
                    operation: "GetObject",
                    message: format!("reading s3://{}/{key}: {e}", self.bucket),
                    retryable: true,
                })?;
                Ok(Some(data.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => Ok(None),
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

    async fn pointer(&self, key: &str) -> Result<Option<Pointer>, AwsError> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AwsError::Corrupt {
                key: format!("s3://{}/{key}", self.bucket),
                reason: e.to_string(),
            })
    }

    async fn set_pointer(&self, key: &str, p: &Pointer) -> Result<(), AwsError> {
        let bytes = serde_json::to_vec_pretty(p).map_err(|e| AwsError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        })?;
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
        self.put(&key, bytes, "application/x-tar").await?;
        self.set_pointer(BUNDLE_POINTER, &pointer).await?;
        Ok(pointer)
    }

    /// The bundle in force, verified. Fails closed: no pointer, no bundle,
    /// a hash that does not match the pointer or the manifest are errors.
    pub async fn current_bundle(&self) -> Result<VerifiedBundle, AwsError> {
        let pointer = self.pointer(BUNDLE_POINTER).await?.ok_or_else(|| {
            AwsError::Config(format!(
                "policy bundle refused: s3://{}/{BUNDLE_POINTER} does not exist; publish a bundle first",
                self.bucket
            ))
        })?;
        let bytes = self.get(&pointer.key).await?.ok_or_else(|| {
            AwsError::Config(format!(
                "policy bundle refused: s3://{}/{} (named by {BUNDLE_POINTER}) does not exist",
                self.bucket, pointer.key
            ))
        })?;
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
        let bytes = self
            .get(&pointer.key)
            .await?
            .ok_or_else(|| AwsError::Corrupt {
                key: format!("s3://{}/{}", self.bucket, pointer.key),
                reason: format!("named by {MODEL_POINTER} but missing"),
            })?;
        if let Some(expected) = &pointer.sha256 {
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(AwsError::Corrupt {
                    key: format!("s3://{}/{}", self.bucket, pointer.key),
                    reason: format!("SHA-256 {actual}, the pointer says {expected}"),
                });
            }
        }
        Ok(Some((pointer, bytes)))
    }
}
