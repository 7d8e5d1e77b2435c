//! The dashboard's static files, embedded in the binary and served under a name that carries a
//! hash of their bytes: a changed file gets a new URL, so each URL can be cached for a year.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use shared::http::{ApiError, Missing};
use std::sync::LazyLock;

/// Where assets are served.
pub const PREFIX: &str = "/app/assets/";

/// One embedded file under its hashed name.
pub struct Asset {
    /// `<stem>.<hash>.<ext>`.
    pub name: String,
    content_type: &'static str,
    bytes: Vec<u8>,
}

/// `<stem>.<first 16 hex digits of the SHA-256 of bytes>.<ext>`: the name changes whenever the
/// content does.
pub fn hashed_name(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    format!("{stem}.{}.{ext}", &digest[..16])
}

static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    let bytes = include_bytes!("../assets/dashboard.css").to_vec();
    Asset {
        name: hashed_name("dashboard", "css", &bytes),
        content_type: "text/css; charset=utf-8",
        bytes,
    }
});

/// The platforms' chart colours, generated from `shared::stats::platform_color` (their one
/// place) rather than copied into `dashboard.css`.
static PLATFORM_COLOURS: LazyLock<Asset> = LazyLock::new(|| {
    let bytes = crate::analytics::platform_css().into_bytes();
    Asset {
        name: hashed_name("platforms", "css", &bytes),
        content_type: "text/css; charset=utf-8",
        bytes,
    }
});

/// The stylesheet's URL, for the pages' `<link>`.
pub fn stylesheet_url() -> String {
    format!("{PREFIX}{}", STYLESHEET.name)
}

/// The platform colours' URL, for the pages with charts.
pub fn platform_colours_url() -> String {
    format!("{PREFIX}{}", PLATFORM_COLOURS.name)
}

/// The asset of that hashed name, with a year of immutable caching; a 404 otherwise (an old
/// name after a deploy included: its bytes are gone).
pub fn serve(name: &str) -> Response {
    let Some(asset) = [&*STYLESHEET, &*PLATFORM_COLOURS]
        .into_iter()
        .find(|asset| asset.name == name)
    else {
        return ApiError::NotFound(Missing::Asset).into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes.clone(),
    )
        .into_response()
}
