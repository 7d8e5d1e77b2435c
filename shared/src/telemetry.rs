//! Logging set-up: JSON lines in Lambda (CloudWatch parses them), compact text locally.
//! Nothing logged anywhere may carry a full phone number or a secret: contact ids display
//! masked, secrets do not display at all.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber; `RUST_LOG` sets the level (default `info`). JSON (Lambda)
/// also turns on the EMF metric lines (see `crate::metrics`).
pub fn init(format: LogFormat) {
    if format == LogFormat::Json {
        crate::metrics::enable();
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
