//! Secrets in Lambda come from SSM Parameter Store (moto's server here), read once: only the
//! ones a function needs, decrypted; a missing one stops the start-up, naming it.

use aws_sdk_ssm::types::ParameterType;
use integration_tests::*;
use shared::config::{ConfigError, SecretName, Secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_read_from_the_parameter_store_and_only_those_needed() {
    let Some(config) = emulator_config("SQS_ENDPOINT").await else {
        return;
    };
    let ssm = aws_sdk_ssm::Client::new(&config);
    let prefix = put_secrets(
        &ssm,
        &[
            ("ADMIN_API_KEY", "admin-from-ssm-0123456789"),
            ("POSTBACK_TOKEN", "token-from-ssm-0123456789"),
            ("LINK_SECRET", "link-from-ssm-0123456789"),
        ],
    )
    .await;
    let needed = [SecretName::AdminApiKey, SecretName::PostbackToken];
    let secrets = Secrets::from_parameter_store(&config, &prefix, &needed)
        .await
        .expect("secrets");
    assert!(
        secrets
            .admin_keys
            .admin
            .current()
            .matches(b"admin-from-ssm-0123456789")
    );
    assert!(secrets.postback_token.matches(b"token-from-ssm-0123456789"));
    // Not asked for: unusable, even though the parameter exists.
    assert!(!secrets.link_secret.matches(b"link-from-ssm-0123456789"));
    assert!(!secrets.meta_app_secret.matches(b""));

    // No READONLY_API_KEY under this prefix: it is optional, so the admin key alone works.
    let admin = Secrets::from_parameter_store(&config, &prefix, &SecretName::ADMIN)
        .await
        .expect("the read-only key is optional");
    assert!(admin.admin_keys.readonly.is_none());

    // Rotating values, and the read-only key once it exists.
    let rotating = put_secrets(
        &ssm,
        &[
            (
                "ADMIN_API_KEY",
                "admin-new-0123456789, admin-old-0123456789",
            ),
            ("READONLY_API_KEY", "readonly-0123456789"),
        ],
    )
    .await;
    let keys = Secrets::from_parameter_store(&config, &rotating, &SecretName::ADMIN)
        .await
        .expect("secrets")
        .admin_keys;
    use shared::secret::KeyName;
    assert_eq!(keys.identify(b"admin-new-0123456789"), Some(KeyName::Admin));
    assert_eq!(
        keys.identify(b"admin-old-0123456789"),
        Some(KeyName::AdminPrevious)
    );
    assert_eq!(
        keys.identify(b"readonly-0123456789"),
        Some(KeyName::Readonly)
    );
    assert_eq!(keys.identify(b"admin-from-ssm-0123456789"), None);

    let missing = Secrets::from_parameter_store(&config, &prefix, &[SecretName::MetaAppSecret])
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ConfigError::MissingSecret("META_APP_SECRET")),
        "{missing}"
    );
}

/// Stores `secrets` as SecureString parameters under a new prefix; answers the prefix.
async fn put_secrets(ssm: &aws_sdk_ssm::Client, secrets: &[(&str, &str)]) -> String {
    let prefix = format!("/t{}/", ulid::Ulid::new());
    for (name, value) in secrets {
        ssm.put_parameter()
            .name(format!("{prefix}{name}"))
            .value(*value)
            .r#type(ParameterType::SecureString)
            .send()
            .await
            .expect("put parameter");
    }
    prefix
}
