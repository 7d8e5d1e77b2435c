//! Domain crate of the attribution engine.
//!
//! Plain types and pure functions (Meta payload parsing, signature checks, first-touch
//! decisions), the store traits shaped after the access patterns, and their implementations:
//! an embedded store for local use and, with the `aws` feature, DynamoDB.

#![warn(missing_docs)]

pub mod catalog;
pub mod config;
pub mod contact;
pub mod erasure;
pub mod events;
pub mod fields;
pub mod funnels;
pub mod goals;
pub mod http;
#[cfg(feature = "https")]
pub mod https;
pub mod ids;
pub mod ingest;
pub mod instances;
pub mod matching;
pub mod meta;
pub mod metrics;
mod monotonic_ulid;
pub mod outbound;
pub mod queue;
pub mod revenue;
pub mod rules;
pub mod secret;
pub mod sources;
pub mod spend;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod web;
