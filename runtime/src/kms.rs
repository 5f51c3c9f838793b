//! KMS access for signed deployments ([`crate::deployment::signing`]): signing a message with an
//! asymmetric key (`Sign`, ECDSA_SHA_256 over the raw message) and reading a key's public half
//! (`GetPublicKey`, SPKI DER). Endpoints the AWS way (`AWS_ENDPOINT_URL_KMS`); the SDK's retries
//! are off and weir's own ([`weir_aws::retry`]) try a throttled or unreachable KMS again, counted
//! as `weir_aws_retries_total{service="kms"}`.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use weir_aws::{self as aws, Policy, Service, Transient, cause, describe, one_line};

/// A KMS request failed.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// The key or alias does not exist.
    #[error("KMS key {key} does not exist at {endpoint}: check the key id, ARN or alias/NAME and the region")]
    NotFound {
        /// The key as given.
        key: String,
        /// Where the request went.
        endpoint: String,
    },
    /// The credentials lack the permission, or the key may not be used this way.
    #[error(
        "KMS refused {action} on {key} ({detail}): the credentials need kms:{action} on the key, in its key policy too"
    )]
    AccessDenied {
        /// The key as given.
        key: String,
        /// `Sign` or `GetPublicKey`.
        action: &'static str,
        /// What KMS said.
        detail: String,
    },
    /// No credentials were found in the default chain.
    #[error(
        "no AWS credentials for KMS key {key}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role ({detail})"
    )]
    NoCredentials {
        /// The key as given.
        key: String,
        /// What the credential chain said.
        detail: String,
    },
    /// The endpoint could not be reached.
    #[error(
        "cannot reach KMS at {endpoint} for key {key}: {detail}; check the endpoint (AWS_ENDPOINT_URL_KMS) and the network"
    )]
    Unreachable {
        /// The key as given.
        key: String,
        /// Where the request went.
        endpoint: String,
        /// The error and its causes.
        detail: String,
    },
    /// KMS answered with another error (a key that is not for signing, disabled, ...).
    #[error("KMS refused {action} on {key}: {code} {message}")]
    Refused {
        /// The key as given.
        key: String,
        /// `Sign` or `GetPublicKey`.
        action: &'static str,
        /// The error code.
        code: String,
        /// KMS's message.
        message: String,
    },
    /// The reply lacked what was asked for.
    #[error("KMS's {action} reply for {key} has no {what}")]
    Incomplete {
        /// The key as given.
        key: String,
        /// `Sign` or `GetPublicKey`.
        action: &'static str,
        /// The missing field.
        what: &'static str,
    },
}

impl Transient for KmsError {
    fn is_transient(&self) -> bool {
        match self {
            KmsError::Unreachable { .. } => true,
            KmsError::Refused { code, .. } => aws::is_transient_code(code),
            _ => false,
        }
    }
}

/// A key's public half as KMS gives it.
pub struct PublicKeyReply {
    /// The key's ARN (or id, as the service names it).
    pub key_id: String,
    /// The public key, DER-encoded SubjectPublicKeyInfo.
    pub der: Vec<u8>,
}

/// A KMS client with AWS settings from the usual places.
#[derive(Clone, Debug)]
pub struct Kms {
    client: Client,
    endpoint: String,
}

impl Kms {
    /// A client; `region` overrides the configured region. Makes no request.
    pub async fn connect(region: Option<&str>) -> Self {
        let config = aws::config(region).await;
        let endpoint = aws::endpoint_override(&config, "KMS");
        let kms_config = aws_sdk_kms::config::Builder::from(&config)
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .build();
        let endpoint = endpoint.unwrap_or_else(|| aws::regional_endpoint(&config, "KMS"));
        Self { client: Client::from_conf(kms_config), endpoint }
    }

    /// The public half of `key` (a key id, ARN, alias/NAME or alias ARN).
    pub async fn public_key(&self, key: &str) -> Result<PublicKeyReply, KmsError> {
        let what = format!("read the public key of KMS key {key}");
        aws::retry(Service::Kms, Policy::READ, what, || async {
            let reply = self
                .client
                .get_public_key()
                .key_id(key)
                .send()
                .await
                .map_err(|e| self.explain(&e, key, "GetPublicKey"))?;
            let incomplete =
                |what| KmsError::Incomplete { key: key.to_string(), action: "GetPublicKey", what };
            let der = reply.public_key().ok_or_else(|| incomplete("PublicKey"))?.as_ref().to_vec();
            let key_id = reply.key_id().ok_or_else(|| incomplete("KeyId"))?.to_string();
            Ok(PublicKeyReply { key_id, der })
        })
        .await
    }

    /// `key`'s ECDSA_SHA_256 signature of `message` (at most 4096 bytes), DER-encoded.
    pub async fn sign(&self, key: &str, message: &[u8]) -> Result<Vec<u8>, KmsError> {
        let what = format!("sign with KMS key {key}");
        aws::retry(Service::Kms, Policy::READ, what, || async {
            let reply = self
                .client
                .sign()
                .key_id(key)
                .message(Blob::new(message))
                .message_type(MessageType::Raw)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
                .await
                .map_err(|e| self.explain(&e, key, "Sign"))?;
            let signature = reply.signature().ok_or(KmsError::Incomplete {
                key: key.to_string(),
                action: "Sign",
                what: "Signature",
            })?;
            Ok(signature.as_ref().to_vec())
        })
        .await
    }

    fn explain<E, R>(&self, error: &SdkError<E, R>, key: &str, action: &'static str) -> KmsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let key = key.to_string();
        let endpoint = self.endpoint.clone();
        match (error.code(), error) {
            (Some("NotFoundException"), _) => KmsError::NotFound { key, endpoint },
            (
                Some("AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException"),
                _,
            ) => KmsError::AccessDenied {
                key,
                action,
                detail: error.message().unwrap_or("no detail").to_string(),
            },
            _ if let Some(credentials) = cause::<CredentialsError>(error) => {
                KmsError::NoCredentials { key, detail: one_line(&credentials.to_string()) }
            }
            (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
                KmsError::Unreachable { key, endpoint, detail: describe(error) }
            }
            (code, _) => KmsError::Refused {
                key,
                action,
                code: code.unwrap_or("(no code)").to_string(),
                message: error.message().map_or_else(|| describe(error), str::to_string),
            },
        }
    }
}
