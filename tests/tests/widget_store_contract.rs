//! The contract every `WidgetStore` implementation keeps, run against each of them.

use integration_tests::*;
use shared::ids::InstanceId;
use shared::time::Timestamp;
use shared::web::store::WidgetStore;
use shared::web::{ClickIds, RefCode, Utm, WebPlatform, WebVisit, WidgetConfig};
use std::sync::Arc;

on_every_store!(
    a_saved_widget_loads_back_field_for_field,
    loading_the_widget_of_an_instance_without_one_answers_none,
    a_second_save_replaces_the_widget_entirely,
    widgets_are_per_instance,
    a_replace_lands_only_while_the_key_it_names_is_current,
    a_created_ref_code_loads_back_field_for_field,
    loading_an_unknown_ref_code_answers_none,
    an_expired_ref_code_still_loads_as_stored,
    a_taken_code_is_refused_and_the_first_stays,
    a_code_is_taken_across_instances,
    concurrent_creates_of_one_code_have_one_winner,
);

async fn store(backend: Backend) -> Option<(Arc<dyn WidgetStore>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((stores.widgets, guard))
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn instance(id: &str) -> InstanceId {
    InstanceId::parse(id).unwrap()
}

fn widget(instance_id: &str, key: &str, origins: &[&str]) -> WidgetConfig {
    WidgetConfig {
        instance_id: instance(instance_id),
        widget_key: key.to_owned(),
        allowed_origins: origins.iter().map(|origin| (*origin).to_owned()).collect(),
        campaigns: Vec::new(),
        updated_at: ts("2026-03-01T10:00:00.123Z"),
    }
}

/// A visit with only what every visit has.
fn bare_visit() -> WebVisit {
    WebVisit {
        platform: WebPlatform::Other,
        utm: Utm::default(),
        click_ids: ClickIds::default(),
        page_url: "https://shop.example/".to_owned(),
        referrer: None,
        via: None,
        ref_code: None,
        counted_campaign: None,
        captured_at: ts("2026-03-01T10:00:00.000Z"),
    }
}

/// A visit with every optional part set.
fn full_visit() -> WebVisit {
    WebVisit {
        platform: WebPlatform::Google,
        utm: Utm {
            source: Some("google".to_owned()),
            medium: Some("cpc".to_owned()),
            campaign: Some("spring sale ü".to_owned()),
            term: Some("red shoes".to_owned()),
            content: Some("ad#2".to_owned()),
        },
        click_ids: ClickIds {
            gclid: Some("gclid-1".to_owned()),
            fbclid: Some("fbclid-1".to_owned()),
            ..ClickIds::default()
        },
        page_url: "https://shop.example/p?utm_source=google&x=%20y".to_owned(),
        referrer: Some("https://www.google.com/".to_owned()),
        via: Some("wa.me".to_owned()),
        ref_code: Some("ABCDEFGH".to_owned()),
        counted_campaign: Some("spring sale ü".to_owned()),
        captured_at: ts("2026-03-01T10:00:00.456Z"),
    }
}

fn ref_code(code: &str, instance_id: &str, visitor: &str, visit: WebVisit) -> RefCode {
    RefCode {
        code: code.to_owned(),
        instance_id: instance(instance_id),
        visitor_id: visitor.to_owned(),
        expires_at: visit.captured_at.plus_seconds(30 * 86_400),
        visit,
    }
}

async fn a_saved_widget_loads_back_field_for_field(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    // Origins keep their order, as many as a widget may have.
    let mut origins: Vec<String> = (0..shared::web::MAX_ORIGINS)
        .rev()
        .map(|n| format!("https://shop{n}.example:8443"))
        .collect();
    origins.insert(1, "http://localhost:3000".to_owned());
    let config = WidgetConfig {
        allowed_origins: origins,
        campaigns: (0..shared::web::MAX_CAMPAIGNS)
            .map(|n| format!("{n:03}{}", "é".repeat(shared::web::MAX_CAMPAIGN_CHARS - 3)))
            .collect(),
        ..widget("1", "wk_0123456789abcdef", &[])
    };
    store.save_widget(&config).await.unwrap();
    assert_eq!(
        store.load_widget(&instance("1")).await.unwrap(),
        Some(config)
    );
}

async fn loading_the_widget_of_an_instance_without_one_answers_none(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(store.load_widget(&instance("1")).await.unwrap(), None);
    store
        .save_widget(&widget("1", "wk_a", &["https://a.example"]))
        .await
        .unwrap();
    assert_eq!(store.load_widget(&instance("2")).await.unwrap(), None);
    assert_eq!(store.load_widget(&instance("10")).await.unwrap(), None);
}

async fn a_second_save_replaces_the_widget_entirely(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = widget(
        "1",
        "wk_first",
        &[
            "https://a.example",
            "https://b.example",
            "https://c.example",
        ],
    );
    store.save_widget(&first).await.unwrap();
    // A rotation: a new key, fewer origins, a later time. Nothing of the first remains.
    let rotated = WidgetConfig {
        updated_at: ts("2026-03-02T11:00:00.789Z"),
        ..widget("1", "wk_second", &["https://d.example"])
    };
    store.save_widget(&rotated).await.unwrap();
    assert_eq!(
        store.load_widget(&instance("1")).await.unwrap(),
        Some(rotated.clone())
    );
    // Saving the same configuration again changes nothing.
    store.save_widget(&rotated).await.unwrap();
    assert_eq!(
        store.load_widget(&instance("1")).await.unwrap(),
        Some(rotated)
    );
}

async fn a_replace_lands_only_while_the_key_it_names_is_current(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let edited = WidgetConfig {
        campaigns: vec!["Spring Sale".into()],
        ..widget("1", "wk_first", &["https://a.example"])
    };
    assert!(
        !store.replace_widget(&edited, "wk_first").await.unwrap(),
        "no widget yet: nothing to replace"
    );
    assert_eq!(store.load_widget(&instance("1")).await.unwrap(), None);
    store
        .save_widget(&widget("1", "wk_first", &["https://a.example"]))
        .await
        .unwrap();
    assert!(store.replace_widget(&edited, "wk_first").await.unwrap());
    assert_eq!(
        store.load_widget(&instance("1")).await.unwrap(),
        Some(edited.clone())
    );
    // A rotation lands first: the edit made from the old key must not bring that key back.
    let rotated = widget("1", "wk_second", &["https://a.example"]);
    store.save_widget(&rotated).await.unwrap();
    assert!(!store.replace_widget(&edited, "wk_first").await.unwrap());
    assert_eq!(
        store.load_widget(&instance("1")).await.unwrap(),
        Some(rotated)
    );
}

async fn widgets_are_per_instance(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = widget("1", "wk_one", &["https://one.example"]);
    let second = widget("2", "wk_two", &["https://two.example"]);
    store.save_widget(&first).await.unwrap();
    store.save_widget(&second).await.unwrap();
    let rotated = widget("2", "wk_two_rotated", &["https://two.example"]);
    store.save_widget(&rotated).await.unwrap();
    assert_eq!(
        store.load_widget(&instance("1")).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        store.load_widget(&instance("2")).await.unwrap(),
        Some(rotated)
    );
}

async fn a_created_ref_code_loads_back_field_for_field(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let full = ref_code("ABCDEFGH", "1", "visitor-1", full_visit());
    let bare = ref_code("23456789", "1", "visitor-2", bare_visit());
    assert!(store.create_ref(&full).await.unwrap());
    assert!(store.create_ref(&bare).await.unwrap());
    assert_eq!(store.load_ref("ABCDEFGH").await.unwrap(), Some(full));
    assert_eq!(store.load_ref("23456789").await.unwrap(), Some(bare));
}

async fn loading_an_unknown_ref_code_answers_none(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(store.load_ref("ABCDEFGH").await.unwrap(), None);
    assert!(
        store
            .create_ref(&ref_code("ABCDEFGH", "1", "visitor-1", bare_visit()))
            .await
            .unwrap()
    );
    // Codes are looked up exactly: no other case, prefix or extension matches. (No empty
    // code: DynamoDB refuses an empty key, and callers only look up codes of the right shape.)
    for other in ["abcdefgh", "ABCDEFG", "ABCDEFGHJ", "BCDEFGH"] {
        assert_eq!(store.load_ref(other).await.unwrap(), None, "code {other:?}");
    }
}

async fn an_expired_ref_code_still_loads_as_stored(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    // `load_ref` answers the code expired or not; the caller compares `expires_at` with now.
    let mut visit = bare_visit();
    visit.captured_at = ts("2026-01-01T00:00:00.000Z");
    let expired = RefCode {
        expires_at: Timestamp::now().plus_seconds(-86_400),
        ..ref_code("EXPIRED2", "1", "visitor-1", visit)
    };
    assert!(store.create_ref(&expired).await.unwrap());
    assert_eq!(store.load_ref("EXPIRED2").await.unwrap(), Some(expired));
    // An expired code is still taken: it is not created a second time.
    let again = ref_code("EXPIRED2", "2", "visitor-2", full_visit());
    assert!(!store.create_ref(&again).await.unwrap());
}

async fn a_taken_code_is_refused_and_the_first_stays(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = ref_code("ABCDEFGH", "1", "visitor-1", bare_visit());
    assert!(store.create_ref(&first).await.unwrap());
    // The same code again, identical or with another visitor and visit: refused, unchanged.
    let other = RefCode {
        expires_at: ts("2027-01-01T00:00:00.000Z"),
        ..ref_code("ABCDEFGH", "1", "visitor-2", full_visit())
    };
    assert!(!store.create_ref(&first).await.unwrap());
    assert!(!store.create_ref(&other).await.unwrap());
    assert_eq!(store.load_ref("ABCDEFGH").await.unwrap(), Some(first));
}

async fn a_code_is_taken_across_instances(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    // Codes are looked up by code alone, so one instance's code is taken for every other.
    let first = ref_code("ABCDEFGH", "1", "visitor-1", bare_visit());
    assert!(store.create_ref(&first).await.unwrap());
    let elsewhere = ref_code("ABCDEFGH", "2", "visitor-1", bare_visit());
    assert!(!store.create_ref(&elsewhere).await.unwrap());
    assert_eq!(store.load_ref("ABCDEFGH").await.unwrap(), Some(first));
    // Another code of the other instance is its own.
    let own = ref_code("JKLMNPQR", "2", "visitor-1", bare_visit());
    assert!(store.create_ref(&own).await.unwrap());
    assert_eq!(store.load_ref("JKLMNPQR").await.unwrap(), Some(own));
}

async fn concurrent_creates_of_one_code_have_one_winner(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let store = store.clone();
            let candidate = ref_code("RACE2345", "1", &format!("visitor-{writer}"), bare_visit());
            tokio::spawn(async move {
                let created = store.create_ref(&candidate).await.unwrap();
                (candidate, created)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        let (candidate, created) = writer.await.unwrap();
        if created {
            winners.push(candidate);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create of a code succeeds");
    assert_eq!(store.load_ref("RACE2345").await.unwrap(), winners.pop());
}
