//! `local-server --demo`'s week (`local_server::demo::fill`) poured into an empty embedded store
//! through the engine's routes, then read back through the admin API: every dashboard page has
//! something true to show, and a second fill into a fresh folder gives the same counts.

use chrono::Utc;
use integration_tests::{Backend, admin_get, call, engine_app, fresh_stores, secrets};
use local_server::demo::{self, INSTAGRAM, PAGE, WHATSAPP};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What each page shows, as counts: each instance's 7-day stats (without their time bounds and
/// rule ids),
/// its contacts by channel and by acquisition kind, and the revenue totals.
#[derive(Debug, PartialEq)]
struct Shown {
    stats: BTreeMap<&'static str, Value>,
    channels: BTreeMap<String, u64>,
    kinds: BTreeMap<String, u64>,
    backfilled: u64,
    revenue_totals: Value,
    /// The Ads page's default report, by campaign: rows and totals.
    ads: Value,
}

async fn get(app: &axum::Router, path: &str) -> Value {
    let (status, body) = call(app, admin_get(path)).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn fill_and_read() -> Shown {
    let (stores, _guard) = fresh_stores(Backend::Embedded)
        .await
        .expect("embedded store");
    let app = engine_app(&stores).app;
    let filled = demo::fill(&app, &secrets(), Utc::now())
        .await
        .expect("the demo fill");
    assert_eq!(filled.instances, [WHATSAPP, PAGE, INSTAGRAM]);

    let job = get(
        &app,
        &format!("/instances/{WHATSAPP}/backfill/{}", filled.backfill_job_id),
    )
    .await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(
        job["updated"].as_u64().unwrap() > 0,
        "the backfill attributed contacts: {job}"
    );

    let mut shown = Shown {
        stats: BTreeMap::new(),
        channels: BTreeMap::new(),
        kinds: BTreeMap::new(),
        backfilled: 0,
        revenue_totals: Value::Null,
        ads: Value::Null,
    };
    for instance in filled.instances {
        let mut stats = get(&app, &format!("/instances/{instance}/stats?days=7")).await;
        // Times and minted rule ids differ from fill to fill; the counts must not.
        for bound in ["since", "until"] {
            stats.as_object_mut().unwrap().remove(bound);
        }
        for rule in stats["rules"].as_array_mut().unwrap() {
            rule.as_object_mut().unwrap().remove("rule_id");
        }
        shown.stats.insert(instance, stats);
        let listing = get(&app, &format!("/instances/{instance}/contacts?limit=500")).await;
        assert_eq!(
            listing["next_cursor"],
            Value::Null,
            "one page holds the demo's contacts"
        );
        for contact in listing["contacts"].as_array().unwrap() {
            *shown
                .channels
                .entry(contact["channel"].as_str().unwrap().to_owned())
                .or_default() += 1;
            let kind = contact["acquisition"]["kind"]
                .as_str()
                .unwrap_or("none")
                .to_owned();
            *shown.kinds.entry(kind).or_default() += 1;
            if contact["acquisition"]["backfill_job_id"] == filled.backfill_job_id.as_str() {
                shown.backfilled += 1;
            }
        }
    }
    let report = get(&app, "/reports/revenue?group_by=offer").await;
    shown.revenue_totals = report["totals"].clone();
    let ads = get(&app, "/reports/ads?group_by=campaign").await;
    shown.ads = json!({"rows": ads["rows"], "totals": ads["totals"]});
    shown
}

/// An amount of money (`"123.45"`) in cents.
fn cents(amount: &Value) -> i64 {
    let (units, fraction) = amount.as_str().unwrap().split_once('.').unwrap();
    units.parse::<i64>().unwrap() * 100 + fraction.parse::<i64>().unwrap()
}

/// The Ads page's table: spend for the Meta ads and the rules' campaigns in both currencies,
/// conversations from the ads, the rules and the widget's listed campaigns, and figures that
/// add up (totals the sum of the rows, each cost per conversation the spend over them).
fn check_the_ads_report(ads: &Value) {
    let rows = ads["rows"].as_array().unwrap();
    let row = |campaign: &str| {
        rows.iter()
            .find(|row| row["key"] == campaign)
            .unwrap_or_else(|| panic!("{campaign} in {rows:?}"))
    };
    for (campaign, conversations) in [
        ("summer-sale", 3),
        // Two on WhatsApp, two on Instagram from the reel of the same campaign.
        ("sneaker-drop", 4),
        ("spring-collection", 2),
        ("free-shipping", 1),
        ("spring-2026", 4),
        ("search-brand", 3),
        ("b2b-teams", 3),
        ("retargeting", 1),
    ] {
        assert_eq!(row(campaign)["conversations"], conversations, "{campaign}");
    }
    assert_eq!(row("b2b-teams")["currency"], "EUR");
    let summer = row("summer-sale");
    assert_eq!(
        summer["currency"], "EUR",
        "its spend and its plan's revenue"
    );
    assert_ne!(summer["roas"], Value::Null, "{summer}");
    assert_eq!(
        row("retargeting")["currency"],
        Value::Null,
        "a listed web campaign with no spend"
    );
    assert!(
        rows.iter().all(|row| row["key"] != "june-digest"),
        "a campaign off the widget's list is not counted"
    );
    for row in rows.iter().filter(|row| !row["currency"].is_null()) {
        let (spend, conversations) = (cents(&row["spend"]), row["conversations"].as_i64().unwrap());
        let expected = (conversations > 0).then(|| {
            let per = (spend * 2 + conversations) / (conversations * 2);
            json!(format!("{}.{:02}", per / 100, per % 100))
        });
        assert_eq!(
            row["cost_per_conversation"],
            expected.unwrap_or(Value::Null),
            "{row}"
        );
    }
    let totals = ads["totals"].as_array().unwrap();
    for currency in ["USD", "EUR"] {
        let total = totals
            .iter()
            .find(|total| total["currency"] == currency)
            .unwrap_or_else(|| panic!("{currency} in {totals:?}"));
        let of_rows: i64 = rows
            .iter()
            .filter(|row| row["currency"] == currency)
            .map(|row| cents(&row["spend"]))
            .sum();
        assert_eq!(cents(&total["spend"]), of_rows, "{currency}");
    }
}

#[tokio::test]
async fn the_demo_week_gives_every_page_something_true_and_the_same_each_time() {
    let shown = fill_and_read().await;

    // Attribution and Analytics: Meta ads, rules and web on the WhatsApp number.
    let whatsapp = &shown.stats[WHATSAPP];
    for figure in ["meta_ads", "matched_by_rules", "unmatched"] {
        assert!(
            whatsapp[figure].as_u64().unwrap() > 0,
            "{figure}: {whatsapp}"
        );
    }
    assert!(
        whatsapp["by_kind"]["web"].as_u64().unwrap() > 0,
        "{whatsapp}"
    );
    assert!(
        whatsapp["rules"].as_array().unwrap().len() >= 4,
        "{whatsapp}"
    );
    let platforms: Vec<&str> = whatsapp["by_platform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    for platform in [
        "facebook",
        "instagram",
        "whatsapp",
        "tiktok",
        "google",
        "linkedin",
    ] {
        assert!(platforms.contains(&platform), "{platform} in {platforms:?}");
    }
    for instance in [PAGE, INSTAGRAM] {
        assert!(
            shown.stats[instance]["meta_ads"].as_u64().unwrap() > 0,
            "{instance}"
        );
    }

    // The backfill attributed the texts that came before their rule.
    assert!(shown.backfilled >= 2, "{shown:?}");

    // Contacts: every channel, and every kind of source.
    for channel in ["whatsapp", "messenger", "instagram", "web"] {
        assert!(
            shown.channels.get(channel).copied().unwrap_or(0) > 0,
            "{channel}: {:?}",
            shown.channels
        );
    }
    for kind in ["meta_ad", "shortlink", "rule", "web", "none"] {
        assert!(
            shown.kinds.get(kind).copied().unwrap_or(0) > 0,
            "{kind}: {:?}",
            shown.kinds
        );
    }

    // Revenue: both currencies, never summed, each with revenue.
    let totals = shown.revenue_totals.as_array().unwrap();
    let currencies: Vec<&str> = totals
        .iter()
        .map(|t| t["currency"].as_str().unwrap())
        .collect();
    assert_eq!(currencies.len(), 2, "{totals:?}");
    for total in totals {
        let revenue: f64 = total["revenue"].as_str().unwrap().parse().unwrap();
        assert!(revenue > 0.0, "{total}");
        assert!(total["conversions"].as_u64().unwrap() > 0, "{total}");
    }
    let usd = totals.iter().find(|t| t["currency"] == "USD").unwrap();
    // Three credited conversions, the duplicate and the unknown click adding nothing.
    assert_eq!(
        (usd["conversions"].clone(), usd["revenue"].clone()),
        (json!(3), json!("379.70"))
    );

    check_the_ads_report(&shown.ads);

    assert_eq!(fill_and_read().await, shown, "a fresh fill shows the same");
}

#[test]
fn a_rerun_starts_from_a_fresh_demo_folder_and_never_uses_the_data_folder() {
    let root = tempfile::tempdir().unwrap();
    let (demo_dir, data_dir) = (root.path().join("demo"), root.path().join("data"));
    std::fs::create_dir_all(&demo_dir).unwrap();
    std::fs::write(demo_dir.join("engine.redb"), b"last run's week").unwrap();
    std::fs::write(demo_dir.join("notes.txt"), b"not the store's").unwrap();

    let named = Some(demo_dir.to_string_lossy().into_owned());
    let folder = demo::fresh_folder(named, &data_dir).unwrap();
    assert_eq!(folder, demo_dir);
    assert!(
        !demo_dir.join("engine.redb").exists(),
        "the old store is gone"
    );
    assert!(
        demo_dir.join("notes.txt").exists(),
        "nothing else is touched"
    );

    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("engine.redb"), b"real data").unwrap();
    let same = format!("{}/../data", demo_dir.display());
    assert!(demo::fresh_folder(Some(same), &data_dir).is_err());
    assert_eq!(
        std::fs::read(data_dir.join("engine.redb")).unwrap(),
        b"real data"
    );
}
