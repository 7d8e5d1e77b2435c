//! The local server's `POST /spend/sync/meta` over https, without the internet: a fake Graph
//! server on loopback with a certificate this test makes (signed by a CA it makes too), which
//! the Graph client trusts through `SSL_CERT_FILE` (read by `rustls-native-certs`, the roots
//! the client loads) — and a server whose CA is not in that file, which it refuses.
//!
//! One test in its own binary: it sets the process environment the local server reads
//! (`META_GRAPH_URL`, `META_AD_ACCOUNT_ID`, `SSL_CERT_FILE`), which no other test may see.

use axum::extract::{Query, State};
use http::StatusCode;
use integration_tests::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls;

const ACCOUNT: &str = "act_42";
const TOKEN: &str = "graph-token-0123456789";

/// A CA, its PEM, and a certificate for 127.0.0.1 it signed (with the certificate's key).
fn ca_and_loopback_certificate() -> (String, rustls::ServerConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().to_vec().into()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    (ca_pem, server)
}

/// What the fake Graph server was asked: the tokens it saw.
type Seen = Arc<Mutex<Vec<String>>>;

async fn insights(
    State(seen): State<Seen>,
    Query(query): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    seen.lock()
        .unwrap()
        .push(query.get("access_token").cloned().unwrap_or_default());
    let today = shared::time::Timestamp::now().day();
    axum::Json(json!({"data": [{
        "ad_id": "120230011223344556", "ad_name": "Video A", "adset_id": "9", "adset_name": "Sudeste",
        "campaign_id": "8", "campaign_name": "CTWA Verao", "spend": "12.34", "impressions": "1000",
        "clicks": "12", "account_currency": "USD", "date_start": today, "date_stop": today
    }], "paging": {"cursors": {"before": "1"}}}))
}

/// Serves the fake Graph API over TLS on `listener` with `tls`.
fn serve_graph(listener: std::net::TcpListener, tls: rustls::ServerConfig, seen: Seen) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let graph = axum::Router::new()
        .route("/v21.0/{account}/insights", axum::routing::get(insights))
        .with_state(seen);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, graph) = (acceptor.clone(), graph.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(stream) = acceptor.accept(socket).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(graph);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// The local server's routes over `stores`, pulling from `graph_url` with the roots in
/// `SSL_CERT_FILE` (read when the engine is built).
fn local_server_pulling_from(graph_url: &str, stores: &Stores) -> axum::Router {
    // SAFETY: this binary's only test sets these while nothing else reads the environment.
    unsafe { std::env::set_var("META_GRAPH_URL", graph_url) };
    let mut secrets = secrets();
    secrets.meta_access_token = Some(shared::secret::Secret::new(TOKEN));
    local_server::engine(&secrets, stores, PUBLIC_BASE_URL).app
}

async fn pull(app: &axum::Router) -> (StatusCode, Value) {
    call(
        app,
        admin_request("POST", "/spend/sync/meta", Some(json!({"days": 1}))),
    )
    .await
}

#[test]
fn the_local_server_pulls_over_https_from_a_graph_server_it_trusts() {
    let folder = tempfile::tempdir().unwrap();
    let (trusted_ca, trusted_tls) = ca_and_loopback_certificate();
    let (_, untrusted_tls) = ca_and_loopback_certificate();
    let ca_file = folder.path().join("ca.pem");
    std::fs::write(&ca_file, trusted_ca).unwrap();
    // SAFETY: set before the runtime starts, in this binary's only test.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &ca_file);
        std::env::set_var("META_AD_ACCOUNT_ID", ACCOUNT);
    }
    let trusted = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let untrusted = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url_of = |listener: &std::net::TcpListener| {
        format!("https://{}/v21.0", listener.local_addr().unwrap())
    };
    let (trusted_url, untrusted_url) = (url_of(&trusted), url_of(&untrusted));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let seen = Seen::default();
        serve_graph(trusted, trusted_tls, seen.clone());
        serve_graph(untrusted, untrusted_tls, Seen::default());
        for backend in [Backend::Embedded, Backend::Dynamo] {
            let Some((stores, _guard)) = fresh_stores(backend).await else {
                continue;
            };
            let app = local_server_pulling_from(&trusted_url, &stores);
            let (status, body) = pull(&app).await;
            assert_eq!(status, StatusCode::OK, "{backend:?}: {body}");
            assert_eq!(
                (body["rows"].clone(), body["imported"].clone()),
                (json!(1), json!(1))
            );
            let today = shared::time::Timestamp::now().day();
            let (_, report) = call(
                &app,
                admin_get(&format!(
                    "/reports/ads?group_by=ad&since={today}&until={today}"
                )),
            )
            .await;
            assert_eq!(report["rows"][0]["spend"], "12.34", "{report}");
            assert_eq!(report["rows"][0]["name"], "Video A");
            assert_eq!(seen.lock().unwrap().last().map(String::as_str), Some(TOKEN));
            // A certificate from a CA the file does not hold: refused, nothing written.
            let app = local_server_pulling_from(&untrusted_url, &stores);
            let (status, body) = pull(&app).await;
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
            assert_eq!(body["error"]["code"], "meta_unreachable");
            let (_, again) = call(
                &app,
                admin_get(&format!(
                    "/reports/ads?group_by=ad&since={today}&until={today}"
                )),
            )
            .await;
            assert_eq!(
                again["rows"], report["rows"],
                "the refused pull wrote nothing"
            );
        }
    });
}
