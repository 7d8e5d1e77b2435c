//! Signature check + parse + event extraction on the sample Meta payloads: the CPU work of one
//! webhook delivery before the store is touched.
//!
//! cargo bench -p shared --bench webhook_ingest

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shared::meta::{parse_delivery, sign, verify_signature};
use shared::secret::Secret;
use shared::time::Timestamp;
use std::hint::black_box;

const FIXTURES: [(&str, &str); 4] = [
    (
        "whatsapp_text_ctwa_referral",
        include_str!("../../tests/fixtures/meta/whatsapp_text_ctwa_referral.json"),
    ),
    (
        "whatsapp_text_prefilled",
        include_str!("../../tests/fixtures/meta/whatsapp_text_prefilled_tiktok.json"),
    ),
    (
        "whatsapp_statuses",
        include_str!("../../tests/fixtures/meta/whatsapp_statuses.json"),
    ),
    (
        "messenger_referral",
        include_str!("../../tests/fixtures/meta/messenger_referral_existing_thread.json"),
    ),
];

/// A 2 KB delivery as Meta sends it (compact JSON): the click-to-WhatsApp fixture with more
/// messages batched in until it reaches 2,048 bytes.
fn two_kilobyte_delivery() -> String {
    let mut delivery: serde_json::Value = serde_json::from_str(FIXTURES[0].1).unwrap();
    let messages = &delivery["entry"][0]["changes"][0]["value"]["messages"];
    let first = messages[0].clone();
    let mut body = serde_json::to_string(&delivery).unwrap();
    let mut n = 0;
    while body.len() < 2048 {
        n += 1;
        let mut next = first.clone();
        next["id"] = format!("wamid.batched.{n}").into();
        delivery["entry"][0]["changes"][0]["value"]["messages"]
            .as_array_mut()
            .unwrap()
            .push(next);
        body = serde_json::to_string(&delivery).unwrap();
    }
    body
}

fn ingest_cpu(c: &mut Criterion) {
    let secret = Secret::new("bench-app-secret");
    let now = Timestamp::from_unix_seconds(1_800_000_000).unwrap();
    let padded = two_kilobyte_delivery();
    let mut cases: Vec<(&str, String)> = FIXTURES
        .iter()
        .map(|(name, body)| (*name, body.to_string()))
        .collect();
    cases.push(("batched_2kb", padded));

    let mut group = c.benchmark_group("verify_parse_extract");
    for (name, body) in &cases {
        let header = sign(&secret, body.as_bytes());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new(*name, body.len()), body, |b, body| {
            b.iter(|| {
                verify_signature(&secret, Some(header.as_bytes()), black_box(body.as_bytes()))
                    .unwrap();
                black_box(parse_delivery(black_box(body.as_bytes()), now).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ingest_cpu);
criterion_main!(benches);
