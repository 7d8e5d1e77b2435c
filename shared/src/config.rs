//! Configuration from the environment, the same in Lambda and in the local server.

use crate::secret::{AdminKeys, RotatingSecret, Secret};

/// Why the configuration could not be read; the engine refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("the environment variable {0} must be set")]
    Missing(&'static str),
    /// A required secret is absent from Parameter Store.
    #[error("the SSM parameter SECRETS_PREFIX + {0} must exist (a SecureString)")]
    MissingSecret(&'static str),
    /// A variable is set but does not parse.
    #[error("the environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why its value does not parse.
        reason: String,
    },
}

/// A variable that must be set and non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}

/// A set, non-empty variable.
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// A variable parsed as `T`, or `default` when unset; a value that does not parse is an error, not the default.
pub fn parsed_or<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        }),
    }
}

/// The secrets the engine knows, by the name they have in the environment (locally) and in
/// SSM Parameter Store (in Lambda, under `SECRETS_PREFIX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretName {
    /// Signs Meta's webhook deliveries (`X-Hub-Signature-256`).
    MetaAppSecret,
    /// Answers Meta's webhook subscription challenge.
    MetaVerifyToken,
    /// The admin API key, `current[,previous]`.
    AdminApiKey,
    /// Optional: a key of the admin API that may only read.
    ReadonlyApiKey,
    /// Authenticates affiliate platforms' postbacks.
    PostbackToken,
    /// Keys tracked-link codes and client address hashes.
    LinkSecret,
    /// Optional: the Meta access token (`ads_read`) the ad spend pull reads Insights with.
    MetaAccessToken,
}

impl SecretName {
    /// Every secret, e.g. for a function that needs them all.
    pub const ALL: [SecretName; 7] = [
        SecretName::MetaAppSecret,
        SecretName::MetaVerifyToken,
        SecretName::AdminApiKey,
        SecretName::ReadonlyApiKey,
        SecretName::PostbackToken,
        SecretName::LinkSecret,
        SecretName::MetaAccessToken,
    ];

    /// The secrets every function serving admin routes reads.
    pub const ADMIN: [SecretName; 2] = [SecretName::AdminApiKey, SecretName::ReadonlyApiKey];

    /// The secret's name in the environment and in Parameter Store (after the prefix).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MetaAppSecret => "META_APP_SECRET",
            Self::MetaVerifyToken => "META_VERIFY_TOKEN",
            Self::AdminApiKey => "ADMIN_API_KEY",
            Self::ReadonlyApiKey => "READONLY_API_KEY",
            Self::PostbackToken => "POSTBACK_TOKEN",
            Self::LinkSecret => "LINK_SECRET",
            Self::MetaAccessToken => "META_ACCESS_TOKEN",
        }
    }

    /// What the local server uses when the environment has no value; `None` for an optional
    /// secret, which then stays unset.
    fn dev_default(&self) -> Option<&'static str> {
        match self {
            Self::MetaAppSecret => Some("dev-app-secret"),
            Self::MetaVerifyToken => Some("dev-verify-token"),
            Self::AdminApiKey => Some("dev-admin-key"),
            Self::ReadonlyApiKey => None,
            Self::PostbackToken => Some("dev-postback-token"),
            Self::LinkSecret => Some("dev-link-secret"),
            Self::MetaAccessToken => None,
        }
    }

    #[cfg(feature = "aws")]
    fn is_optional(&self) -> bool {
        self.dev_default().is_none()
    }
}

/// A secret the local server made up because the environment had none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevDefault {
    /// The secret's variable name.
    pub name: &'static str,
    /// The made-up value, to show in the local server's startup log.
    pub value: &'static str,
}

/// Every secret the engine uses, read once at startup.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Verifies Meta's webhook signatures.
    pub meta_app_secret: Secret,
    /// Answers Meta's subscription challenge.
    pub meta_verify_token: Secret,
    /// `ADMIN_API_KEY` and the optional `READONLY_API_KEY`, each `current[,previous]`.
    pub admin_keys: AdminKeys,
    /// Affiliate platforms send it with each postback.
    pub postback_token: Secret,
    /// Keys tracked-link codes and the hashes of clicking clients' addresses.
    pub link_secret: Secret,
    /// Reads Meta's Insights for the ad spend pull; `None` where it is not set.
    pub meta_access_token: Option<Secret>,
}

impl Secrets {
    /// Builds the set from `value`, which answers `None` for an optional secret left unset.
    fn assemble(
        mut value: impl FnMut(SecretName) -> Result<Option<Secret>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let mut required = |name: SecretName| value(name)?.ok_or(ConfigError::Missing(name.name()));
        let meta_app_secret = required(SecretName::MetaAppSecret)?;
        let meta_verify_token = required(SecretName::MetaVerifyToken)?;
        let admin = rotating(SecretName::AdminApiKey, &required(SecretName::AdminApiKey)?)?;
        let postback_token = required(SecretName::PostbackToken)?;
        let link_secret = required(SecretName::LinkSecret)?;
        let readonly = value(SecretName::ReadonlyApiKey)?
            .map(|raw| rotating(SecretName::ReadonlyApiKey, &raw))
            .transpose()?;
        let meta_access_token = value(SecretName::MetaAccessToken)?;
        Ok(Self {
            meta_app_secret,
            meta_verify_token,
            admin_keys: AdminKeys { admin, readonly },
            postback_token,
            link_secret,
            meta_access_token,
        })
    }

    /// For the local server: each secret from the environment, or a development default, which
    /// it returns too so the caller can say so. Fails only on a key that does not parse.
    pub fn from_env_or_dev_defaults() -> Result<(Self, Vec<DevDefault>), ConfigError> {
        let mut used_defaults = Vec::new();
        let secrets = Self::assemble(|name| {
            Ok(match (optional(name.name()), name.dev_default()) {
                (Some(value), _) => Some(Secret::new(value)),
                (None, Some(default)) => {
                    used_defaults.push(DevDefault {
                        name: name.name(),
                        value: default,
                    });
                    Some(Secret::new(default))
                }
                (None, None) => None,
            })
        })?;
        Ok((secrets, used_defaults))
    }

    /// For Lambda: the `needed` secrets from SSM Parameter Store (`prefix` + name, e.g.
    /// `/attribution-engine/ADMIN_API_KEY`, SecureString), in one `GetParameters` call at cold
    /// start; never from plain environment variables. A secret the function does not need is
    /// unusable (it matches nothing).
    #[cfg(feature = "aws")]
    pub async fn from_parameter_store(
        config: &aws_config::SdkConfig,
        prefix: &str,
        needed: &[SecretName],
    ) -> Result<Self, ConfigError> {
        let client = aws_sdk_ssm::Client::new(config);
        let mut found = std::collections::HashMap::new();
        if !needed.is_empty() {
            let output = client
                .get_parameters()
                .set_names(Some(
                    needed
                        .iter()
                        .map(|name| format!("{prefix}{}", name.name()))
                        .collect(),
                ))
                .with_decryption(true)
                .send()
                .await
                .map_err(|error| ConfigError::Invalid {
                    name: "SECRETS_PREFIX",
                    reason: format!(
                        "SSM GetParameters failed: {}",
                        aws_sdk_ssm::error::DisplayErrorContext(&error)
                    ),
                })?;
            for parameter in output.parameters.unwrap_or_default() {
                if let (Some(name), Some(value)) = (parameter.name, parameter.value) {
                    found.insert(name, value);
                }
            }
        }
        Self::assemble(|name| {
            if !needed.contains(&name) {
                // An optional secret not asked for is absent; a required one matches nothing.
                return Ok((!name.is_optional()).then(Secret::unusable));
            }
            let value = found
                .remove(&format!("{prefix}{}", name.name()))
                .filter(|value| !value.is_empty())
                .map(Secret::new);
            match value {
                None if !name.is_optional() => Err(ConfigError::MissingSecret(name.name())),
                value => Ok(value),
            }
        })
    }
}

/// A key variable's value as `current[,previous]`.
fn rotating(name: SecretName, raw: &Secret) -> Result<RotatingSecret, ConfigError> {
    RotatingSecret::parse(raw).map_err(|reason| ConfigError::Invalid {
        name: name.name(),
        reason,
    })
}

/// What every Lambda function starts from, built once per cold start: JSON logs, the SDK
/// configuration and one DynamoDB client that all of the function's stores share.
#[cfg(feature = "aws")]
pub struct LambdaStart {
    /// The SDK configuration (region, credentials, endpoint).
    pub aws: aws_config::SdkConfig,
    /// The DynamoDB client every store of the function is built on.
    pub dynamo: aws_sdk_dynamodb::Client,
}

#[cfg(feature = "aws")]
impl LambdaStart {
    /// Sets up JSON logging and loads the SDK configuration.
    pub async fn new() -> Self {
        crate::telemetry::init(crate::telemetry::LogFormat::Json);
        let aws = aws_sdk_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        Self { aws, dynamo }
    }

    /// The `needed` secrets from Parameter Store under `SECRETS_PREFIX`, read while `warm_up`
    /// (the first DynamoDB connection) runs, so the two TLS handshakes overlap instead of
    /// adding up.
    pub async fn secrets_while(
        &self,
        needed: &[SecretName],
        warm_up: impl std::future::Future<Output = ()>,
    ) -> Result<Secrets, ConfigError> {
        let prefix = required("SECRETS_PREFIX")?;
        let (secrets, ()) = tokio::join!(
            Secrets::from_parameter_store(&self.aws, &prefix, needed),
            warm_up
        );
        secrets
    }
}

/// The AWS SDK configuration, loaded once per cold start and shared by every client: region and
/// credentials as the SDK reads them from the environment (`AWS_ENDPOINT_URL` too), and one
/// HTTPS client that trusts [`AMAZON_ROOTS`] alone — or the system's roots when
/// `AWS_SDK_SYSTEM_ROOTS=1` (a TLS-inspecting proxy, an endpoint signed by another CA).
#[cfg(feature = "aws")]
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if optional("AWS_SDK_SYSTEM_ROOTS").is_some_and(|value| value == "1") {
        return loader.load().await;
    }
    // The SDK's rustls client (aws-lc, as `default-https-client` builds it) with
    // AMAZON_ROOTS as its only trust anchors.
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_ROOTS);
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a trust store of PEM roots always builds");
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    loader.http_client(client).load().await
}

/// The roots of Amazon Trust Services (Amazon Root CA 1–4, and the Starfield root that
/// cross-signs them), which sign the certificates of every AWS endpoint the functions call.
/// Parsing the system's bundle of ~150 roots was about a quarter of a cold start's user CPU
/// (`infra/scripts/lambda-init.sh`); these five are parsed in microseconds, and trusting
/// fewer roots is no weaker for these connections.
pub const AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services-roots.pem");

#[cfg(test)]
mod amazon_roots {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_embedded_roots_parse_as_the_sdk_client_reads_them() {
        // The client parses them with this call and panics on an error: a broken file would
        // fail every AWS call of every function, so it is read here first.
        let roots: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(super::AMAZON_ROOTS)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(roots.len(), 5);
        let text = std::str::from_utf8(super::AMAZON_ROOTS).unwrap();
        for name in [
            "Amazon_Root_CA_1",
            "Amazon_Root_CA_2",
            "Amazon_Root_CA_3",
            "Amazon_Root_CA_4",
            "Starfield_Services_Root_Certificate_Authority_-_G2",
        ] {
            assert!(text.contains(&format!("# {name}\n")), "{name}");
        }
    }
}
