//! Configuration from the environment, the same in Lambda and in the local server.

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the environment variable {0} must be set")]
    Missing(&'static str),
    #[error("the environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}

/// A set, non-empty variable.
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every secret must be configured.
    Lambda,
    /// Missing secrets fall back to development defaults, which the caller announces.
    Local,
}

/// A secret the local server made up because the environment had none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevDefault {
    pub name: &'static str,
    pub value: &'static str,
}

#[derive(Debug, Clone)]
pub struct Secrets {
    pub meta_app_secret: Secret,
    pub meta_verify_token: Secret,
    pub admin_api_key: Secret,
    /// Affiliate platforms send it with each postback.
    pub postback_token: Secret,
    /// Keys tracked-link codes and the hashes of clicking clients' addresses.
    pub link_secret: Secret,
}

const DEV_DEFAULTS: [DevDefault; 5] = [
    DevDefault {
        name: "META_APP_SECRET",
        value: "dev-app-secret",
    },
    DevDefault {
        name: "META_VERIFY_TOKEN",
        value: "dev-verify-token",
    },
    DevDefault {
        name: "ADMIN_API_KEY",
        value: "dev-admin-key",
    },
    DevDefault {
        name: "POSTBACK_TOKEN",
        value: "dev-postback-token",
    },
    DevDefault {
        name: "LINK_SECRET",
        value: "dev-link-secret",
    },
];

impl Secrets {
    /// Reads the secrets; in local mode also returns the development defaults it used.
    pub fn from_env(mode: Mode) -> Result<(Self, Vec<DevDefault>), ConfigError> {
        let mut used_defaults = Vec::new();
        let mut read = |default: &DevDefault| match (optional(default.name), mode) {
            (Some(value), _) => Ok(Secret::new(value)),
            (None, Mode::Lambda) => Err(ConfigError::Missing(default.name)),
            (None, Mode::Local) => {
                used_defaults.push(default.clone());
                Ok(Secret::new(default.value))
            }
        };
        let secrets = Self {
            meta_app_secret: read(&DEV_DEFAULTS[0])?,
            meta_verify_token: read(&DEV_DEFAULTS[1])?,
            admin_api_key: read(&DEV_DEFAULTS[2])?,
            postback_token: read(&DEV_DEFAULTS[3])?,
            link_secret: read(&DEV_DEFAULTS[4])?,
        };
        Ok((secrets, used_defaults))
    }
}

/// The AWS SDK configuration, loaded once per cold start and shared by every client: region and
/// credentials as the SDK reads them from the environment (`AWS_ENDPOINT_URL` too).
#[cfg(feature = "aws")]
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
