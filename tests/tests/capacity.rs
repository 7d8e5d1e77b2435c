//! The count check: every operation's DynamoDB round trips, capacity units and SQS calls, on
//! DynamoDB Local and moto, equal `infra/capacity/expected.json` exactly, so a change that adds
//! a round trip fails here until the file is rewritten on purpose
//! (`infra/scripts/capacity.sh --update`). `CAPACITY_PRINT=1` prints the table;
//! `CAPACITY_UPDATE=1` writes the file instead of comparing.

use integration_tests::capacity::{Rig, counts_only, to_json, to_markdown};
use std::path::PathBuf;

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/capacity/expected.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_costs_what_expected_json_says() {
    let Some(rig) = Rig::new().await else {
        return;
    };
    let measured = rig.measure_all().await;
    let figures = to_json(&measured);
    if std::env::var_os("CAPACITY_PRINT").is_some() || std::env::var_os("CAPACITY_UPDATE").is_some()
    {
        println!("\n{}", to_markdown(&measured));
    }
    if std::env::var_os("CAPACITY_UPDATE").is_some() {
        let text = serde_json::to_string_pretty(&figures).unwrap() + "\n";
        std::fs::write(expected_path(), text).expect("write expected.json");
        return;
    }
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(expected_path()).expect("infra/capacity/expected.json"),
    )
    .expect("expected.json is JSON");
    let (measured, expected) = (counts_only(&figures), counts_only(&expected));
    let moved: Vec<String> = measured["operations"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["operations"].as_array().unwrap())
        .filter(|(now, before)| now != before)
        .map(|(now, before)| {
            format!(
                "{}\n  expected {before}\n  measured {now}",
                now["operation"]
            )
        })
        .collect();
    assert!(
        moved.is_empty() && measured == expected,
        "the capacity figures moved (if on purpose, run infra/scripts/capacity.sh --update):\n{}",
        moved.join("\n")
    );
}
