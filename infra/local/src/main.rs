//! The local server: every HTTP route of every function, from one process on one port, on the
//! embedded store. Configuration comes from the environment, as in Lambda:
//! `PORT` (3000), `DATA_DIR` (./.data), `META_APP_SECRET`, `META_VERIFY_TOKEN`, `ADMIN_API_KEY`
//! (`current[,previous]`), the optional `READONLY_API_KEY` (the same; GET admin routes only),
//! `POSTBACK_TOKEN`, `LINK_SECRET` (development defaults when unset), `PUBLIC_BASE_URL` (the
//! base of tracked links; this server's address by default) and `STORE_FAULT_RATIO` (0; a fraction of store calls to
//! fail, for trying out retries).
//!
//! `--demo` fills a fresh demo folder (`DEMO_DATA_DIR`, ./.data-demo; never `DATA_DIR`) with a
//! week of traffic through the routes themselves (`local_server::demo`), then serves it.

use local_server::Stores;
use shared::config::{self, Secrets};
use shared::store::{EmbeddedStore, FaultInjectingStore, FaultPlan};
use shared::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init(LogFormat::Text);
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local server failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let demo = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--demo") => true,
        Some(other) => {
            return Err(format!("unknown argument {other:?} (the only flag is --demo)").into());
        }
    };
    let port: u16 = config::parsed_or("PORT", 3000)?;
    let data_dir = PathBuf::from(config::optional("DATA_DIR").unwrap_or_else(|| "./.data".into()));
    let data_dir = if demo {
        local_server::demo::fresh_folder(config::optional("DEMO_DATA_DIR"), &data_dir)?
    } else {
        data_dir
    };
    let fault_ratio: f64 = config::parsed_or("STORE_FAULT_RATIO", 0.0)?;

    let (secrets, defaults) = Secrets::from_env_or_dev_defaults()?;
    for default in &defaults {
        tracing::warn!(
            "{} is not set: using the development default {:?}; never use it in production",
            default.name,
            default.value
        );
    }

    let embedded = EmbeddedStore::open(&data_dir.join("engine.redb"))?;
    let stores = if fault_ratio > 0.0 {
        tracing::warn!(
            fault_ratio,
            "failing this fraction of store calls on purpose"
        );
        let plan = FaultPlan::ratio(fault_ratio, 0x5eed);
        Stores::of(FaultInjectingStore::new(embedded, plan))
    } else {
        Stores::of(embedded)
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let public_base_url = config::optional("PUBLIC_BASE_URL")
        .unwrap_or_else(|| format!("http://{}", listener.local_addr().expect("bound")));
    let app = local_server::engine(&secrets, &stores, &public_base_url).app;
    if demo {
        let filled = local_server::demo::fill(&app, &secrets, chrono::Utc::now()).await?;
        let dev_key = defaults
            .iter()
            .find(|d| d.name == "ADMIN_API_KEY")
            .map(|d| d.value);
        local_server::demo::announce(&filled, &public_base_url, dev_key);
    }
    tracing::info!(
        "serving every route on http://{} with data in {}",
        listener.local_addr()?,
        data_dir.display()
    );
    // The peer address is the click hash's client address (never `X-Forwarded-For`).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
