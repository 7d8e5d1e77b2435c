//! Conversation sources through the webhook, on both stores: a WhatsApp `sent` status with its
//! conversation's origin before the person's first message makes the contact `proactive`, in
//! either arrival order; a message before the status stays `organic`; an ad acquisition is
//! `ads`; `delivered` statuses change nothing; the stats' `by_source` equals a recount of the
//! contacts, and the Analytics page shows it.

use async_trait::async_trait;
use http::StatusCode;
use integration_tests::*;
use serde_json::{Value, json};
use shared::contact::Contact;
use shared::contact::counters::CounterBump;
use shared::contact::store::{
    ContactPage, ContactStore, ContactUpdate, ContactWindow, CounterDays, EventRead, IdentityCommit,
};
use shared::ids::{ContactId, InstanceId};
use shared::sources::BusinessFirst;
use shared::store::{CommitOutcome, DedupeClaim, StoreError};
use std::sync::{Arc, Mutex};

on_every_store!(
    a_status_before_the_first_message_is_proactive_in_either_order,
    a_message_before_the_status_stays_organic_in_either_order,
    an_ad_contact_is_ads_whoever_wrote_first,
    by_source_equals_a_recount_and_the_analytics_page_shows_it,
    an_erasure_takes_the_recorded_start_too,
    a_start_recorded_between_the_first_message_s_read_and_commit_reaches_the_contact
);

const INSTANCE: &str = "106540352242922";
/// The fixture's `sent` status goes to this phone (and BSUID).
const RECIPIENT: &str = "5215598765432";

async fn deliver(app: &axum::Router, body: &[u8]) {
    let (status, report) = call(app, signed_delivery(body)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
}

/// The statuses fixture with its `sent` status at `sent_at` and its `delivered` one later.
fn statuses(sent_at: i64) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixture("whatsapp_statuses_origin.json")).unwrap();
    let statuses = &mut body["entry"][0]["changes"][0]["value"]["statuses"];
    statuses[0]["timestamp"] = json!(sent_at.to_string());
    statuses[1]["timestamp"] = json!((sent_at + 60).to_string());
    serde_json::to_vec(&body).unwrap()
}

fn message(id: &str, at: i64, referral: Option<Value>) -> Vec<u8> {
    whatsapp_message(INSTANCE, RECIPIENT, id, at, "hola", referral)
}

fn an_hour_ago() -> i64 {
    chrono::Utc::now().timestamp() - 3_600
}

/// Delivers `bodies` (each twice, as Meta retries) to fresh stores; answers the contact (without
/// its version) and the non-zero counters.
async fn outcome(
    backend: Backend,
    bodies: &[&[u8]],
) -> Option<(Value, Vec<(String, String, u64)>)> {
    let (stores, _guard) = fresh_stores(backend).await?;
    let engine = engine_app(&stores);
    for body in bodies {
        deliver(&engine.app, body).await;
        deliver(&engine.app, body).await;
    }
    // What the in-process matcher does meanwhile is not what is compared here.
    let mut contact = comparable_contact(contact(&engine.app, INSTANCE, RECIPIENT).await.unwrap());
    for field in ["version", "rules_checked"] {
        contact.as_object_mut().unwrap().remove(field);
    }
    let mut counters = nonzero_counters(stores.contacts.as_ref(), INSTANCE).await;
    counters.retain(|(_, name, _)| name != "unmatched");
    Some((contact, counters))
}

fn source_counters(counters: &[(String, String, u64)]) -> Vec<(String, u64)> {
    counters
        .iter()
        .filter(|(_, name, _)| name.starts_with("source:"))
        .map(|(_, name, count)| (name.clone(), *count))
        .collect()
}

async fn a_status_before_the_first_message_is_proactive_in_either_order(backend: Backend) {
    let at = an_hour_ago();
    let (status, first) = (statuses(at - 600), message("wamid.m1", at, None));
    let Some(status_first) = outcome(backend, &[&status, &first]).await else {
        return;
    };
    let message_first = outcome(backend, &[&first, &status]).await.unwrap();
    assert_eq!(status_first, message_first);
    let (contact, counters) = status_first;
    assert_eq!(contact["conversation_source"], "proactive", "{contact}");
    assert_eq!(contact["business_first"]["origin"], "marketing");
    assert_eq!(source_counters(&counters), [("source:proactive".into(), 1)]);
    // The delivered status to another person made no contact.
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    deliver(&engine.app, &status).await;
    assert!(contact_of(&engine.app, "5215512345678").await.is_none());
    assert!(
        contact_of(&engine.app, RECIPIENT).await.is_none(),
        "a status alone is no contact"
    );
    assert!(
        nonzero_counters(stores.contacts.as_ref(), INSTANCE)
            .await
            .is_empty()
    );
}

async fn contact_of(app: &axum::Router, id: &str) -> Option<Value> {
    contact(app, INSTANCE, id).await
}

async fn a_message_before_the_status_stays_organic_in_either_order(backend: Backend) {
    let at = an_hour_ago();
    let (status, first) = (statuses(at + 600), message("wamid.m1", at, None));
    let Some(status_first) = outcome(backend, &[&status, &first]).await else {
        return;
    };
    let message_first = outcome(backend, &[&first, &status]).await.unwrap();
    assert_eq!(status_first, message_first);
    let (contact, counters) = status_first;
    assert_eq!(contact["conversation_source"], "organic", "{contact}");
    assert!(contact["business_first"].is_null(), "{contact}");
    assert_eq!(source_counters(&counters), [("source:organic".into(), 1)]);

    // A late earlier message of a proactive contact makes it organic: the customer wrote first.
    let later = message("wamid.m2", at, None);
    let earlier = message("wamid.m0", at - 1_200, None);
    let status = statuses(at - 600);
    let a = outcome(backend, &[&status, &later, &earlier])
        .await
        .unwrap();
    let b = outcome(backend, &[&earlier, &later, &status])
        .await
        .unwrap();
    // The start is kept where it met the contact before the earlier message, and never
    // written where it came after it; the source and its counts are the same.
    assert_eq!(a.0["conversation_source"], b.0["conversation_source"]);
    assert_eq!(a.1, b.1);
    assert_eq!(a.0["conversation_source"], "organic", "{}", a.0);
    assert_eq!(source_counters(&a.1), [("source:organic".into(), 1)]);
}

async fn an_ad_contact_is_ads_whoever_wrote_first(backend: Backend) {
    let at = an_hour_ago();
    let ad = message("wamid.m1", at, Some(ctwa_referral("120226305854810726")));
    let status = statuses(at - 600);
    let Some(a) = outcome(backend, &[&status, &ad]).await else {
        return;
    };
    let b = outcome(backend, &[&ad, &status]).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.0["conversation_source"], "ads", "{}", a.0);
    assert_eq!(
        a.0["business_first"]["origin"], "marketing",
        "the start is kept"
    );
    assert_eq!(source_counters(&a.1), [("source:ads".into(), 1)]);
}

async fn by_source_equals_a_recount_and_the_analytics_page_shows_it(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let at = an_hour_ago();
    deliver(app, &statuses(at - 600)).await;
    deliver(app, &message("wamid.p", at, None)).await;
    for (n, referral) in [
        None,
        Some(ctwa_referral("1201")),
        None,
        Some(ctwa_referral("1202")),
    ]
    .into_iter()
    .enumerate()
    {
        let body = whatsapp_message(
            INSTANCE,
            &format!("1555000{n}"),
            &format!("wamid.{n}"),
            at + n as i64,
            "hi",
            referral,
        );
        deliver(app, &body).await;
    }
    let (status, stats) = call(
        app,
        admin_get(&format!("/instances/{INSTANCE}/stats?days=7")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listing) = call(app, admin_get(&format!("/instances/{INSTANCE}/contacts"))).await;
    let mut recount = json!({"ads": 0, "organic": 0, "proactive": 0});
    for contact in listing["contacts"].as_array().unwrap() {
        let source = contact["conversation_source"].as_str().unwrap();
        recount[source] = json!(recount[source].as_u64().unwrap() + 1);
    }
    assert_eq!(stats["by_source"], recount, "{stats}");
    assert_eq!(recount, json!({"ads": 2, "organic": 2, "proactive": 1}));

    let dashboard = dashboard_app(&stores);
    let panel = signed_in_page(
        &dashboard,
        &format!("/app/instances/{INSTANCE}/contacts/{RECIPIENT}"),
    )
    .await;
    assert!(
        panel.contains(r#"<dd data-field="conversation_source">proactive</dd>"#),
        "{panel}"
    );
    assert!(panel.contains("(marketing)</dd>"), "{panel}");
    let page = signed_in_page(&dashboard, &format!("/app/instances/{INSTANCE}/analytics")).await;
    for (source, label, count) in [
        ("ads", "Ads", 2),
        ("organic", "Organic", 2),
        ("proactive", "Business-initiated", 1),
    ] {
        let row = format!(
            "<tr data-source=\"{source}\"><th scope=\"row\">{label}</th><td>{count}</td></tr>"
        );
        assert!(page.contains(&row), "{row} in the page:\n{page}");
    }
}

/// A dashboard page's HTML, for a session of the admin key.
async fn signed_in_page(app: &axum::Router, path: &str) -> String {
    let form = format!("key={ADMIN_KEY}");
    let login = http::Request::post("/app/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(form))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), login)
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let request = http::Request::get(path)
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, body) = call(app, request).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    body.as_str().unwrap().to_owned()
}

async fn an_erasure_takes_the_recorded_start_too(backend: Backend) {
    let Some((stores, guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let at = an_hour_ago();
    deliver(&engine.app, &statuses(at - 600)).await;
    let path = format!("/instances/{INSTANCE}/contacts/{RECIPIENT}");
    let (status, _) = call(&engine.app, admin_request("DELETE", &path, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    deliver(&engine.app, &message("wamid.m1", at, None)).await;
    let contact = contact_of(&engine.app, RECIPIENT).await.unwrap();
    assert_eq!(contact["conversation_source"], "organic", "{contact}");
    if let Some(store) = &guard.embedded {
        assert!(!store.dump_text().unwrap().contains("first_out"));
    }
}

/// The store, with a status arriving while an event is planned: right after the event's read,
/// the business's start is recorded under the person's id (once), as a concurrent webhook
/// call answering the status would.
struct StatusDuringRead {
    inner: Arc<dyn ContactStore>,
    pending: Mutex<Option<(ContactId, BusinessFirst)>>,
}

#[async_trait]
impl ContactStore for StatusDuringRead {
    async fn load_contact(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        self.inner.load_contact(instance_id, contact_id).await
    }

    async fn load_for_event(
        &self,
        instance_id: &InstanceId,
        identifiers: &[ContactId],
        claim: &DedupeClaim,
    ) -> Result<EventRead, StoreError> {
        let read = self
            .inner
            .load_for_event(instance_id, identifiers, claim)
            .await?;
        let pending = self.pending.lock().unwrap().take();
        if let Some((recipient, start)) = pending {
            self.inner
                .record_business_first(instance_id, &recipient, &start)
                .await?;
        }
        Ok(read)
    }

    async fn commit_identity(
        &self,
        claim: &DedupeClaim,
        commit: &IdentityCommit,
    ) -> Result<CommitOutcome, StoreError> {
        self.inner.commit_identity(claim, commit).await
    }

    async fn commit_event(
        &self,
        claim: &DedupeClaim,
        contact: &Contact,
        expected_version: Option<u64>,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.inner
            .commit_event(claim, contact, expected_version, counters)
            .await
    }

    async fn update_contact(
        &self,
        contact: &Contact,
        expected_version: u64,
        counters: &[CounterBump],
    ) -> Result<CommitOutcome, StoreError> {
        self.inner
            .update_contact(contact, expected_version, counters)
            .await
    }

    async fn update_contacts(
        &self,
        updates: &[ContactUpdate],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        self.inner.update_contacts(updates).await
    }

    async fn load_counter_days(
        &self,
        instance_id: &InstanceId,
        first_day: &str,
        last_day: &str,
    ) -> Result<CounterDays, StoreError> {
        self.inner
            .load_counter_days(instance_id, first_day, last_day)
            .await
    }

    async fn record_business_first(
        &self,
        instance_id: &InstanceId,
        contact_id: &ContactId,
        start: &BusinessFirst,
    ) -> Result<(), StoreError> {
        self.inner
            .record_business_first(instance_id, contact_id, start)
            .await
    }

    async fn list_contacts(
        &self,
        instance_id: &InstanceId,
        window: &ContactWindow,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        self.inner
            .list_contacts(instance_id, window, after, limit)
            .await
    }
}

/// The status's side found no contact and recorded its start after the message's read: the
/// message's commit, which would take the person's key from under the start, is refused and
/// planned again, so the contact is proactive, counted once there, and a retry changes nothing.
async fn a_start_recorded_between_the_first_message_s_read_and_commit_reaches_the_contact(
    backend: Backend,
) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let at = an_hour_ago();
    let start = BusinessFirst {
        at: shared::time::Timestamp::from_unix_seconds(at - 600).unwrap(),
        origin: shared::sources::Origin::of("marketing"),
    };
    let racing = StatusDuringRead {
        inner: stores.contacts.clone(),
        pending: Mutex::new(Some((ContactId::parse(RECIPIENT).unwrap(), start))),
    };
    let webhook = webhook_app(Arc::new(racing));
    let first = message("wamid.m1", at, None);
    deliver(&webhook, &first).await;
    deliver(&webhook, &first).await;
    let engine = engine_app(&stores);
    let contact = contact_of(&engine.app, RECIPIENT).await.unwrap();
    assert_eq!(contact["conversation_source"], "proactive", "{contact}");
    assert_eq!(contact["business_first"]["origin"], "marketing");
    assert_eq!(contact["message_count"], 1);
    let counters = nonzero_counters(stores.contacts.as_ref(), INSTANCE).await;
    assert_eq!(source_counters(&counters), [("source:proactive".into(), 1)]);
}
