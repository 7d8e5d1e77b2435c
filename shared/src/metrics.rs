//! Operational metrics as CloudWatch Embedded Metric Format (EMF): one JSON line on stdout per
//! count, which CloudWatch Logs turns into a metric without any API call. Written only where
//! enabled (Lambda); elsewhere counting is a no-op.

use crate::contact::counters::{CounterBump, NEW_CONTACTS, UNMATCHED};
use std::io::Write;
use std::sync::OnceLock;

/// The namespace metrics go to, once enabled.
static NAMESPACE: OnceLock<String> = OnceLock::new();

/// Turns EMF output on, under `METRICS_NAMESPACE` (default `AttributionEngine`).
pub fn enable() {
    let namespace =
        crate::config::optional("METRICS_NAMESPACE").unwrap_or_else(|| "AttributionEngine".into());
    let _ = NAMESPACE.set(namespace);
}

/// The EMF line of `value` for `metric`, split by `dimensions` (each a name and its value).
pub fn emf_line(
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    value: u64,
    unix_millis: i64,
) -> String {
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": unix_millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [names],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        },
        metric: value,
    });
    for (name, dimension) in dimensions {
        line[*name] = serde_json::Value::from(*dimension);
    }
    line.to_string()
}

/// Counts `value` of `metric`, when enabled.
pub fn count(metric: &str, dimensions: &[(&str, &str)], value: u64) {
    let Some(namespace) = NAMESPACE.get() else {
        return;
    };
    let now = chrono::Utc::now().timestamp_millis();
    let line = emf_line(namespace, metric, dimensions, value, now);
    // One write per line, so concurrent lines never interleave.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The contact counters a committed write moved, as metrics: new contacts, contacts by
/// acquisition kind, rule matches and unmatched contacts (platforms and rule ids stay in the
/// stats API: as dimensions they would be unbounded).
pub fn counters_moved(bumps: &[CounterBump]) {
    // A contact whose first-seen day moved leaves one day's counts for another's: only a net
    // gain of a counter is something new.
    let mut net = std::collections::BTreeMap::<&str, i64>::new();
    for bump in bumps {
        *net.entry(bump.name.as_str()).or_default() += bump.delta;
    }
    for (name, _) in net.into_iter().filter(|(_, delta)| *delta > 0) {
        if name == NEW_CONTACTS {
            count("NewContacts", &[], 1);
        } else if name == UNMATCHED {
            count("Unmatched", &[], 1);
        } else if let Some(kind) = name.strip_prefix("kind:") {
            count("ContactsAttributed", &[("Kind", kind)], 1);
        } else if name.starts_with("rule:") {
            count("RuleMatches", &[], 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_declare_their_metric_and_dimensions() {
        let line = emf_line(
            "Ns",
            "Postbacks",
            &[("Status", "attributed")],
            1,
            1_790_000_000_000,
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &parsed["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Ns");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Status"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "Postbacks");
        assert_eq!(parsed["Postbacks"], 1);
        assert_eq!(parsed["Status"], "attributed");
        assert_eq!(parsed["_aws"]["Timestamp"], 1_790_000_000_000_i64);
        let bare = emf_line("Ns", "Clicks", &[], 3, 0);
        let parsed: serde_json::Value = serde_json::from_str(&bare).unwrap();
        assert_eq!(
            parsed["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([[]])
        );
    }
}
