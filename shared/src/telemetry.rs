//! Logging set-up: JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! Nothing logged anywhere may carry a full phone number or a secret: contact ids display
//! masked, secrets do not display at all.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for CloudWatch.
    Json,
    /// Compact text, for a terminal.
    Text,
}

/// Installs the global subscriber; `RUST_LOG` sets the level (default `info`). JSON (Lambda)
/// also turns on the EMF metric lines (see `crate::metrics`).
pub fn init(format: LogFormat) {
    if format == LogFormat::Json {
        crate::metrics::enable();
    }
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            // The Lambda runtime's span carries the invocation's requestId: every line has it.
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .with_target(false)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
}

/// Dependencies whose `debug` and `trace` events carry raw payloads: the Lambda runtime logs
/// every event whole (tokens, phone numbers, signatures), the AWS SDK and the HTTP stack log
/// requests and responses (secrets read from SSM among them).
const PAYLOAD_LOGGERS: [&str; 14] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "aws_config",
    "aws_sdk_dynamodb",
    "aws_sdk_sqs",
    "aws_sdk_ssm",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter `rust_log` asks for (`info` when unset or unreadable), clamped: the dependencies
/// above never log below `info`, whatever the value says, and audit lines are always kept.
/// Directives naming those dependencies (or a module of theirs) are dropped, and so are
/// span-scoped ones (`[span]=trace`), which would reach their events inside a span.
pub fn log_filter(rust_log: Option<&str>) -> EnvFilter {
    let kept: Vec<&str> = rust_log
        .unwrap_or("info")
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty() && !directive.contains('['))
        .filter(|directive| {
            let target = directive.split('=').next().unwrap_or_default();
            !PAYLOAD_LOGGERS.iter().any(|capped| {
                target
                    .strip_prefix(capped)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
        })
        .collect();
    let mut filter = EnvFilter::try_new(kept.join(",")).unwrap_or_else(|_| EnvFilter::new("info"));
    if filter
        .max_level_hint()
        .is_none_or(|level| level > LevelFilter::INFO)
    {
        for target in PAYLOAD_LOGGERS {
            filter = filter.add_directive(format!("{target}=info").parse().expect("a directive"));
        }
    }
    filter.add_directive("audit=info".parse().expect("a directive"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    fn enabled(rust_log: &str, check: impl FnOnce()) {
        let subscriber = tracing_subscriber::registry().with(log_filter(Some(rust_log)));
        tracing::subscriber::with_default(subscriber, check);
    }

    #[test]
    fn no_setting_turns_on_the_runtimes_event_logging() {
        for rust_log in [
            "trace",
            "debug",
            "lambda_runtime=trace,lambda_http=trace",
            "warn,lambda_runtime::layers=trace",
            "[{requestId}]=trace",
        ] {
            enabled(rust_log, || {
                assert!(
                    !tracing::enabled!(target: "lambda_runtime::layers::api_response", Level::TRACE),
                    "{rust_log}"
                );
                assert!(
                    !tracing::enabled!(target: "lambda_http::request", Level::DEBUG),
                    "{rust_log}"
                );
                assert!(
                    !tracing::enabled!(target: "aws_smithy_runtime::client", Level::DEBUG),
                    "{rust_log}"
                );
                assert!(
                    tracing::enabled!(target: "audit", Level::INFO),
                    "{rust_log}"
                );
            });
        }
        enabled("trace", || {
            assert!(tracing::enabled!(target: "shared::ingest", Level::TRACE));
            assert!(tracing::enabled!(target: "lambda_runtime", Level::INFO));
        });
        enabled("warn", || {
            assert!(!tracing::enabled!(target: "shared::ingest", Level::INFO));
            assert!(!tracing::enabled!(target: "lambda_runtime", Level::INFO));
            assert!(tracing::enabled!(target: "audit", Level::INFO));
        });
    }
}
