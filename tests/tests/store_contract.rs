//! The contract every `ContactStore` implementation keeps, run against each of them.

use integration_tests::*;
use shared::contact::counters::CounterBump;
use shared::contact::store::ContactQueries;
use shared::contact::store::{
    Absorbed, ContactStore, ContactUpdate, ContactWindow, IdentityCommit,
};
use shared::contact::{
    Acquisition, Channel, Contact, InboundMessage, MetaPlatform, MetaReferral, Referral,
};
use shared::ids::{ContactId, InstanceId};
use shared::ingest::{InboundEvent, apply_event};
use shared::instances::MAX_LISTED;
use shared::rules::store::RuleWrite;
use shared::rules::{Rule, RuleDraft, RuleId};
use shared::store::{CommitOutcome, DedupeClaim};
use shared::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

on_every_store!(
    an_unknown_contact_loads_as_none,
    a_committed_contact_reads_back_field_for_field,
    a_held_claim_is_a_duplicate_and_writes_nothing,
    a_stale_version_conflicts_and_claims_nothing,
    creating_an_existing_contact_conflicts,
    an_expired_claim_counts_as_gone,
    instances_are_isolated,
    concurrent_writers_of_one_version_have_one_winner,
    counters_move_with_their_write_and_only_with_it,
    update_contact_applies_at_the_right_version_only,
    rules_round_trip_and_every_write_moves_the_version,
    rule_writes_to_missing_rules_are_not_found,
    the_rule_limit_holds,
    counter_days_are_read_in_one_range,
    contacts_list_newest_first_in_pages_within_the_window,
    a_batch_of_updates_applies_each_on_its_own,
    links_resolve_to_their_contact_and_keep_the_identifier_taken,
    concurrent_linkers_of_one_identifier_have_one_winner,
    a_merge_commits_whole_or_not_at_all,
    instances_are_listed_once_each_after_their_first_commit_or_rule,
    instances_stay_listed_for_a_new_process,
);

async fn a_batch_of_updates_applies_each_on_its_own(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let (first, second) = (contact("1", "a", 1), contact("1", "b", 1));
    store
        .commit_event(&claim("a"), &first, None, &[])
        .await
        .unwrap();
    store
        .commit_event(&claim("b"), &second, None, &[])
        .await
        .unwrap();
    let update = |contact: &Contact, expected_version: u64| {
        let mut next = contact.clone();
        next.version = 2;
        next.message_count = 42;
        ContactUpdate {
            contact: next,
            expected_version,
            counters: vec![bump("1", "2026-01-02", "kind:rule")],
        }
    };
    let outcomes = store
        .update_contacts(&[update(&first, 1), update(&second, 9)])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [CommitOutcome::Applied, CommitOutcome::VersionConflict]
    );
    let instance = InstanceId::parse("1").unwrap();
    let (a, b) = (
        ContactId::parse("a").unwrap(),
        ContactId::parse("b").unwrap(),
    );
    let read_a = store.load_contact(&instance, &a).await.unwrap().unwrap();
    assert_eq!(read_a.message_count, 42);
    let read_b = store.load_contact(&instance, &b).await.unwrap().unwrap();
    assert_eq!(read_b, second, "the conflicting one is untouched");
    assert_eq!(
        store.load_counters(&instance, "2026-01-02").await.unwrap()["kind:rule"],
        1
    );
}

async fn contacts_list_newest_first_in_pages_within_the_window(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    for (id, seconds) in [
        ("a", 1_000),
        ("b", 2_000),
        ("c", 3_000),
        ("d", 3_000),
        ("e", 5_000),
    ] {
        let mut written = contact("1", id, 1);
        written.first_seen_at = at(seconds);
        store
            .commit_event(&claim(id), &written, None, &[])
            .await
            .unwrap();
    }
    store
        .commit_event(&claim("other"), &contact("2", "z", 1), None, &[])
        .await
        .unwrap();
    // A late, earlier message moves "e" back in the listing, without leaving a trace where it was.
    let (instance, e) = (
        InstanceId::parse("1").unwrap(),
        ContactId::parse("e").unwrap(),
    );
    let mut moved = store.load_contact(&instance, &e).await.unwrap().unwrap();
    moved.first_seen_at = at(1_500);
    moved.version = 2;
    store
        .commit_event(&claim("e2"), &moved, Some(1), &[])
        .await
        .unwrap();

    let window = ContactWindow {
        since: at(0),
        until: at(10_000),
    };
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_contacts(&instance, &window, after.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.contacts.len() <= 2);
        listed.extend(
            page.contacts
                .iter()
                .map(|c| c.contact_id.as_str().to_owned()),
        );
        pages += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(listed, ["d", "c", "b", "e", "a"]);

    let narrow = ContactWindow {
        since: at(1_500),
        until: at(3_000),
    };
    let page = store
        .list_contacts(&instance, &narrow, None, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = page
        .contacts
        .iter()
        .map(|c| c.contact_id.as_str())
        .collect();
    assert_eq!(ids, ["b", "e"], "since is inclusive, until exclusive");
    assert_eq!(page.next, None);
}

async fn counter_days_are_read_in_one_range(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let days = ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"];
    for (n, day) in days.iter().enumerate() {
        let mut written = contact("1", &format!("c{n}"), 1);
        written.version = 1;
        let bumps = [
            bump("1", day, "new_contacts"),
            bump("2", day, "new_contacts"),
        ];
        store
            .commit_event(&claim(&format!("k{n}")), &written, None, &bumps)
            .await
            .unwrap();
    }
    let instance = InstanceId::parse("1").unwrap();
    let range = store
        .load_counter_days(&instance, "2026-01-31", "2026-02-01")
        .await
        .unwrap();
    assert_eq!(
        range.keys().collect::<Vec<_>>(),
        ["2026-01-31", "2026-02-01"]
    );
    assert!(range.values().all(|day| day["new_contacts"] == 1));
    let all = store
        .load_counter_days(&instance, "2000-01-01", "2099-12-31")
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        store
            .load_counter_days(&instance, "2026-03-01", "2026-03-31")
            .await
            .unwrap()
            .is_empty()
    );
}

fn bump(instance: &str, day: &str, name: &str) -> CounterBump {
    CounterBump {
        instance_id: InstanceId::parse(instance).unwrap(),
        day: day.into(),
        name: name.into(),
        delta: 1,
    }
}

async fn counters_move_with_their_write_and_only_with_it(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = contact("1", "2", 1);
    let bumps = [
        bump("1", "2026-01-02", "new_contacts"),
        bump("1", "2026-01-02", "kind:meta_ad"),
    ];
    store
        .commit_event(&claim("a"), &first, None, &bumps)
        .await
        .unwrap();
    // A duplicate and a conflict bump nothing.
    assert_eq!(
        store
            .commit_event(&claim("a"), &first, Some(1), &bumps)
            .await
            .unwrap(),
        CommitOutcome::Duplicate
    );
    assert_eq!(
        store
            .commit_event(&claim("b"), &first, Some(7), &bumps)
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    let mut second = first.clone();
    second.version = 2;
    let mut leaves = bump("1", "2026-01-02", "kind:meta_ad");
    leaves.delta = -1;
    let more = [
        bump("1", "2026-01-02", "new_contacts"),
        bump("1", "2026-01-03", "unmatched"),
        leaves,
    ];
    store
        .commit_event(&claim("c"), &second, Some(1), &more)
        .await
        .unwrap();
    let instance = InstanceId::parse("1").unwrap();
    let day = store.load_counters(&instance, "2026-01-02").await.unwrap();
    assert_eq!(
        day,
        BTreeMap::from([
            ("kind:meta_ad".to_owned(), 0),
            ("new_contacts".to_owned(), 2)
        ])
    );
    let next_day = store.load_counters(&instance, "2026-01-03").await.unwrap();
    assert_eq!(next_day, BTreeMap::from([("unmatched".to_owned(), 1)]));
    let other = InstanceId::parse("9").unwrap();
    assert!(
        store
            .load_counters(&other, "2026-01-02")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn update_contact_applies_at_the_right_version_only(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = contact("1", "2", 1);
    store
        .commit_event(&claim("a"), &first, None, &[])
        .await
        .unwrap();
    let mut second = first.clone();
    second.version = 2;
    second.rules_checked_at = Some(at(1_800_000_000));
    let bumps = [bump("1", "2026-01-02", "unmatched")];
    assert_eq!(
        store.update_contact(&second, 5, &bumps).await.unwrap(),
        CommitOutcome::VersionConflict
    );
    assert_eq!(
        store.update_contact(&second, 1, &bumps).await.unwrap(),
        CommitOutcome::Applied
    );
    let (instance, id) = ids(&first);
    assert_eq!(
        store.load_contact(&instance, &id).await.unwrap().unwrap(),
        second
    );
    assert_eq!(
        store.load_counters(&instance, "2026-01-02").await.unwrap()["unmatched"],
        1
    );
    let missing = contact("1", "nobody", 2);
    assert_eq!(
        store.update_contact(&missing, 1, &[]).await.unwrap(),
        CommitOutcome::VersionConflict
    );
}

fn rule(instance: &str, name: &str) -> Rule {
    let draft = RuleDraft::from_json(
        format!(r#"{{"name": "{name}", "platform": "tiktok", "match": {{"kind": "contains", "pattern": "{name}"}}}}"#)
            .as_bytes(),
    )
    .unwrap();
    draft.into_rule(
        RuleId::new(),
        InstanceId::parse(instance).unwrap(),
        at(1_000),
        at(1_000),
    )
}

async fn rules_round_trip_and_every_write_moves_the_version(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let rules = stores.rules;
    let instance = InstanceId::parse("1").unwrap();
    assert_eq!(rules.rules_version(&instance).await.unwrap(), 0);
    assert!(rules.list_rules(&instance).await.unwrap().is_empty());
    let first = rule("1", "alpha");
    let second = rule("1", "beta");
    assert_eq!(
        rules.create_rule(&first, 10).await.unwrap(),
        RuleWrite::Done
    );
    assert_eq!(
        rules.create_rule(&second, 10).await.unwrap(),
        RuleWrite::Done
    );
    rules
        .create_rule(&rule("2", "other instance"), 10)
        .await
        .unwrap();
    let v2 = rules.rules_version(&instance).await.unwrap();
    let mut listed = rules.list_rules(&instance).await.unwrap();
    listed.sort_by(|a, b| a.settings.name.cmp(&b.settings.name));
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    assert_eq!(
        rules.load_rule(&instance, &first.id).await.unwrap(),
        Some(first.clone())
    );

    let mut renamed = first.clone();
    renamed.settings.name = "alpha 2".into();
    assert_eq!(rules.replace_rule(&renamed).await.unwrap(), RuleWrite::Done);
    let v3 = rules.rules_version(&instance).await.unwrap();
    assert!(v3 > v2);
    assert_eq!(
        rules.load_rule(&instance, &first.id).await.unwrap(),
        Some(renamed)
    );

    assert_eq!(
        rules.delete_rule(&instance, &second.id).await.unwrap(),
        RuleWrite::Done
    );
    assert!(rules.rules_version(&instance).await.unwrap() > v3);
    assert_eq!(rules.list_rules(&instance).await.unwrap().len(), 1);
    assert_eq!(rules.load_rule(&instance, &second.id).await.unwrap(), None);
}

async fn rule_writes_to_missing_rules_are_not_found(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let rules = stores.rules;
    let ghost = rule("1", "ghost");
    let version = rules.rules_version(&ghost.instance_id).await.unwrap();
    assert_eq!(
        rules.replace_rule(&ghost).await.unwrap(),
        RuleWrite::NotFound
    );
    assert_eq!(
        rules
            .delete_rule(&ghost.instance_id, &ghost.id)
            .await
            .unwrap(),
        RuleWrite::NotFound
    );
    assert_eq!(
        rules.rules_version(&ghost.instance_id).await.unwrap(),
        version,
        "nothing written"
    );
    assert!(
        rules
            .list_rules(&ghost.instance_id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_rule_limit_holds(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let rules = stores.rules;
    for n in 0..3 {
        assert_eq!(
            rules
                .create_rule(&rule("1", &format!("r{n}")), 3)
                .await
                .unwrap(),
            RuleWrite::Done
        );
    }
    assert_eq!(
        rules.create_rule(&rule("1", "r3"), 3).await.unwrap(),
        RuleWrite::LimitReached
    );
    let instance = InstanceId::parse("1").unwrap();
    assert_eq!(rules.list_rules(&instance).await.unwrap().len(), 3);
    // Deleting one makes room again.
    let victim = rules.list_rules(&instance).await.unwrap().remove(0);
    rules.delete_rule(&instance, &victim.id).await.unwrap();
    assert_eq!(
        rules.create_rule(&rule("1", "r4"), 3).await.unwrap(),
        RuleWrite::Done
    );
    assert_eq!(
        rules.create_rule(&rule("1", "r5"), 3).await.unwrap(),
        RuleWrite::LimitReached
    );
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds).unwrap()
}

fn claim(key: &str) -> DedupeClaim {
    DedupeClaim {
        key: key.to_owned(),
        expires_at: at(2_000_000_000),
        now: at(1_800_000_000),
    }
}

fn full_referral() -> MetaReferral {
    MetaReferral {
        platform: MetaPlatform::Instagram,
        ad_id: Some("120226305854810726".into()),
        ctwa_clid: Some("ARAk-clid".into()),
        headline: Some("Olá — promoção 🎉".into()),
        body: Some("Body with \"quotes\" and\nnewlines".into()),
        source_url: Some("https://www.instagram.com/p/x/".into()),
        media_type: Some("video".into()),
        image_url: Some("https://img.example/a.jpg".into()),
        video_url: Some("https://video.example/a.mp4".into()),
        thumbnail_url: Some("https://img.example/t.jpg".into()),
        post_id: Some("1_2".into()),
        product_id: Some("sku-1".into()),
        catalog_id: Some("1537566713439863".into()),
        ref_param: Some("ref-1".into()),
        source: Some("ad".into()),
        message_id: Some("wamid.1".into()),
        captured_at: at(1_700_000_000),
    }
}

fn contact(instance: &str, id: &str, version: u64) -> Contact {
    let event = InboundEvent {
        dedupe_key: format!("wa:{id}:{version}"),
        instance_id: InstanceId::parse(instance).unwrap(),
        contact_id: ContactId::parse(id).unwrap(),
        channel: Channel::Whatsapp,
        display_name: Some("Zoë".into()),
        occurred_at: at(1_700_000_000),
        message: Some(InboundMessage {
            id: "wamid.1".into(),
            kind: "text".into(),
            text: Some("Olá, vi seu anúncio".into()),
            timestamp: at(1_700_000_000),
            details: None,
        }),
        referral: Some(Referral::MetaAd(full_referral())),
        identity: Default::default(),
    };
    let mut contact = apply_event(None, &event);
    contact.version = version;
    contact
}

async fn store(backend: Backend) -> Option<(Arc<dyn ContactStore>, StoreGuard)> {
    fresh_store(backend).await
}

fn ids(contact: &Contact) -> (InstanceId, ContactId) {
    (contact.instance_id.clone(), contact.contact_id.clone())
}

async fn an_unknown_contact_loads_as_none(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let (instance, id) = ids(&contact("1", "2", 1));
    assert_eq!(store.load_contact(&instance, &id).await.unwrap(), None);
}

async fn a_committed_contact_reads_back_field_for_field(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let written = contact("1", "2", 1);
    assert_eq!(
        store
            .commit_event(&claim("k1"), &written, None, &[])
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    let (instance, id) = ids(&written);
    let read = store.load_contact(&instance, &id).await.unwrap().unwrap();
    assert_eq!(read, written);
    assert!(matches!(read.acquisition, Some(Acquisition::MetaAd(_))));

    // An update at the right version replaces it.
    let mut updated = read.clone();
    updated.message_count = 2;
    updated.acquisition = None;
    updated.first_message = None;
    updated.version = 2;
    assert_eq!(
        store
            .commit_event(&claim("k2"), &updated, Some(1), &[])
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    assert_eq!(
        store.load_contact(&instance, &id).await.unwrap().unwrap(),
        updated
    );
}

async fn a_held_claim_is_a_duplicate_and_writes_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = contact("1", "2", 1);
    store
        .commit_event(&claim("same"), &first, None, &[])
        .await
        .unwrap();
    let mut second = first.clone();
    second.message_count = 99;
    second.version = 2;
    assert_eq!(
        store
            .commit_event(&claim("same"), &second, Some(1), &[])
            .await
            .unwrap(),
        CommitOutcome::Duplicate
    );
    let (instance, id) = ids(&first);
    assert_eq!(
        store.load_contact(&instance, &id).await.unwrap().unwrap(),
        first
    );
}

async fn a_stale_version_conflicts_and_claims_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = contact("1", "2", 1);
    store
        .commit_event(&claim("a"), &first, None, &[])
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.version = 5;
    assert_eq!(
        store
            .commit_event(&claim("b"), &stale, Some(4), &[])
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    let (instance, id) = ids(&first);
    assert_eq!(
        store.load_contact(&instance, &id).await.unwrap().unwrap(),
        first
    );
    // The conflicting commit did not hold on to its claim.
    let mut next = first.clone();
    next.version = 2;
    assert_eq!(
        store
            .commit_event(&claim("b"), &next, Some(1), &[])
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
}

async fn creating_an_existing_contact_conflicts(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = contact("1", "2", 1);
    store
        .commit_event(&claim("a"), &first, None, &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .commit_event(&claim("b"), &first, None, &[])
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
}

async fn an_expired_claim_counts_as_gone(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let first = contact("1", "2", 1);
    let short = DedupeClaim {
        key: "k".into(),
        expires_at: at(1_000),
        now: at(500),
    };
    store.commit_event(&short, &first, None, &[]).await.unwrap();
    let mut later = first.clone();
    later.version = 2;
    let after_expiry = DedupeClaim {
        key: "k".into(),
        expires_at: at(5_000),
        now: at(2_000),
    };
    assert_eq!(
        store
            .commit_event(&after_expiry, &later, Some(1), &[])
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
}

async fn instances_are_isolated(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let on_one = contact("1", "2", 1);
    let on_other = contact("9", "2", 1);
    store
        .commit_event(&claim("1#x"), &on_one, None, &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .commit_event(&claim("9#x"), &on_other, None, &[])
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    let (instance, id) = ids(&on_other);
    assert_eq!(
        store
            .load_contact(&instance, &id)
            .await
            .unwrap()
            .unwrap()
            .instance_id
            .as_str(),
        "9"
    );
}

async fn concurrent_writers_of_one_version_have_one_winner(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let base = contact("1", "2", 1);
    store
        .commit_event(&claim("base"), &base, None, &[])
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let mut next = base.clone();
            next.version = 2;
            next.message_count = 10 + n;
            tokio::spawn(async move {
                store
                    .commit_event(&claim(&format!("w{n}")), &next, Some(1), &[])
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for writer in writers {
        match writer.await.unwrap() {
            CommitOutcome::Applied => applied += 1,
            CommitOutcome::VersionConflict => {}
            CommitOutcome::Duplicate => panic!("distinct claims cannot be duplicates"),
        }
    }
    assert_eq!(applied, 1);
}

// ------------------------------------------------------------------------------ identity links

fn cid(id: &str) -> ContactId {
    ContactId::parse(id).unwrap()
}

/// A new contact `id` with `links` linked to it, as the ingestor commits it.
fn linking(id: &str, links: &[&str], counters: Vec<CounterBump>) -> IdentityCommit {
    let mut contact = contact("1", id, 1);
    contact.linked_ids = links.iter().map(|link| cid(link)).collect();
    IdentityCommit {
        contact,
        expected_version: None,
        new_links: links.iter().map(|link| cid(link)).collect(),
        absorbed: Vec::new(),
        counters,
    }
}

async fn listed(store: &Arc<dyn ContactStore>) -> Vec<String> {
    let window = ContactWindow {
        since: at(0),
        until: at(2_000_000_000),
    };
    let page = store
        .list_contacts(&InstanceId::parse("1").unwrap(), &window, None, 100)
        .await
        .unwrap();
    page.contacts
        .iter()
        .map(|contact| contact.contact_id.as_str().to_owned())
        .collect()
}

async fn links_resolve_to_their_contact_and_keep_the_identifier_taken(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let instance = InstanceId::parse("1").unwrap();
    let written = linking("5215512345678", &["MX.8820194736550012"], vec![]);
    assert_eq!(
        store.commit_identity(&claim("p"), &written).await.unwrap(),
        CommitOutcome::Applied
    );
    let bsuid = cid("MX.8820194736550012");
    assert_eq!(
        store
            .load_contact(&instance, &bsuid)
            .await
            .unwrap()
            .as_ref(),
        Some(&written.contact),
        "the link reads as its contact"
    );
    assert_eq!(
        store.resolve_contact_id(&instance, &bsuid).await.unwrap(),
        Some(cid("5215512345678"))
    );
    assert_eq!(
        store
            .resolve_contact_id(&instance, &cid("nobody"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        listed(&store).await,
        ["5215512345678"],
        "a link is no contact"
    );

    // A linked identifier can be neither a new contact nor linked again, nor a contact's id.
    let mut second = contact("1", "MX.8820194736550012", 1);
    second.contact_id = bsuid.clone();
    assert_eq!(
        store
            .commit_event(
                &claim("u"),
                &second,
                None,
                &[bump("1", "2026-01-01", "new_contacts")]
            )
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
    for taken in ["MX.8820194736550012", "5215512345678"] {
        let commit = linking(
            "other",
            &[taken],
            vec![bump("1", "2026-01-01", "new_contacts")],
        );
        assert_eq!(
            store.commit_identity(&claim("o"), &commit).await.unwrap(),
            CommitOutcome::VersionConflict,
            "{taken}"
        );
    }
    assert_eq!(
        store.load_contact(&instance, &cid("other")).await.unwrap(),
        None
    );
    assert!(
        store
            .load_counters(&instance, "2026-01-01")
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing was claimed by the refused writes, and a held claim is a duplicate.
    let free = linking("other", &["other-link"], vec![]);
    assert_eq!(
        store.commit_identity(&claim("o"), &free).await.unwrap(),
        CommitOutcome::Applied
    );
    let again = linking("third", &["third-link"], vec![]);
    assert_eq!(
        store.commit_identity(&claim("o"), &again).await.unwrap(),
        CommitOutcome::Duplicate
    );
    assert_eq!(
        store
            .load_contact(&instance, &cid("third-link"))
            .await
            .unwrap(),
        None
    );
}

async fn concurrent_linkers_of_one_identifier_have_one_winner(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            // Half create the contact of the identifier itself, half link it to another one.
            tokio::spawn(async move {
                if n % 2 == 0 {
                    let commit = linking(&format!("phone-{n}"), &["bsuid"], vec![]);
                    store
                        .commit_identity(&claim(&format!("w{n}")), &commit)
                        .await
                } else {
                    let written = contact("1", "bsuid", 1);
                    store
                        .commit_event(&claim(&format!("w{n}")), &written, None, &[])
                        .await
                }
                .unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for writer in writers {
        if writer.await.unwrap() == CommitOutcome::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(
        listed(&store).await.len(),
        1,
        "one contact holds the identifier"
    );
}

async fn a_merge_commits_whole_or_not_at_all(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let instance = InstanceId::parse("1").unwrap();
    let day = "2026-01-01";
    let mut phone = linking(
        "phone",
        &["old-bsuid"],
        vec![bump("1", day, "new_contacts")],
    );
    phone.contact.first_seen_at = at(1_000);
    let mut bsuid = linking(
        "bsuid",
        &["username-bsuid"],
        vec![bump("1", day, "new_contacts")],
    );
    bsuid.contact.first_seen_at = at(2_000);
    for (key, commit) in [("a", &phone), ("b", &bsuid)] {
        store.commit_identity(&claim(key), commit).await.unwrap();
    }
    let mut merged = phone.contact.clone();
    merged.version = 2;
    merged.message_count = 2;
    merged.linked_ids = ["old-bsuid", "bsuid", "username-bsuid", "new"]
        .iter()
        .map(|id| cid(id))
        .collect();
    let merge = |version: u64, linked: &[&str]| IdentityCommit {
        contact: merged.clone(),
        expected_version: Some(1),
        new_links: vec![cid("new")],
        absorbed: vec![Absorbed {
            contact_id: cid("bsuid"),
            version,
            linked_ids: linked.iter().map(|id| cid(id)).collect(),
        }],
        counters: vec![CounterBump {
            delta: -1,
            ..bump("1", day, "new_contacts")
        }],
    };
    // The absorbed contact changed, or one of its links is not what was read: nothing moves.
    for stale in [merge(9, &["username-bsuid"]), merge(1, &["old-bsuid"])] {
        assert_eq!(
            store.commit_identity(&claim("m"), &stale).await.unwrap(),
            CommitOutcome::VersionConflict
        );
        assert_eq!(
            store
                .load_contact(&instance, &cid("username-bsuid"))
                .await
                .unwrap(),
            Some(bsuid.contact.clone())
        );
        assert_eq!(
            store.load_contact(&instance, &cid("new")).await.unwrap(),
            None
        );
        assert_eq!(
            store.load_contact(&instance, &cid("phone")).await.unwrap(),
            Some(phone.contact.clone())
        );
        assert_eq!(
            store.load_counters(&instance, day).await.unwrap()["new_contacts"],
            2
        );
        assert_eq!(listed(&store).await, ["bsuid", "phone"]);
    }
    assert_eq!(
        store
            .commit_identity(&claim("m"), &merge(1, &["username-bsuid"]))
            .await
            .unwrap(),
        CommitOutcome::Applied
    );
    for identifier in ["phone", "old-bsuid", "bsuid", "username-bsuid", "new"] {
        assert_eq!(
            store
                .load_contact(&instance, &cid(identifier))
                .await
                .unwrap()
                .as_ref(),
            Some(&merged),
            "{identifier}"
        );
    }
    assert_eq!(listed(&store).await, ["phone"]);
    assert_eq!(
        store.load_counters(&instance, day).await.unwrap()["new_contacts"],
        1
    );
    // The absorbed id is a link now: no contact may take it again.
    let reborn = contact("1", "bsuid", 1);
    assert_eq!(
        store
            .commit_event(&claim("r"), &reborn, None, &[])
            .await
            .unwrap(),
        CommitOutcome::VersionConflict
    );
}

fn instance_ids(instances: Vec<InstanceId>) -> Vec<String> {
    instances.iter().map(ToString::to_string).collect()
}

async fn instances_are_listed_once_each_after_their_first_commit_or_rule(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let (contacts, instances) = (&stores.contacts, &stores.instances);
    assert!(
        instances
            .list_instances(MAX_LISTED)
            .await
            .unwrap()
            .is_empty()
    );
    for (key, instance, id) in [("a", "2", "x"), ("b", "1", "y"), ("c", "1", "z")] {
        let outcome = contacts
            .commit_event(&claim(key), &contact(instance, id, 1), None, &[])
            .await
            .unwrap();
        assert_eq!(outcome, CommitOutcome::Applied);
    }
    // A duplicate and a conflict commit nothing, so they register nothing.
    let duplicate = contacts
        .commit_event(&claim("a"), &contact("3", "x", 1), None, &[])
        .await
        .unwrap();
    assert_eq!(duplicate, CommitOutcome::Duplicate);
    let conflict = contacts
        .commit_event(&claim("d"), &contact("5", "w", 2), Some(1), &[])
        .await
        .unwrap();
    assert_eq!(conflict, CommitOutcome::VersionConflict);
    assert_eq!(
        stores
            .rules
            .create_rule(&rule("4", "alpha"), 10)
            .await
            .unwrap(),
        RuleWrite::Done
    );
    assert_eq!(
        instance_ids(instances.list_instances(MAX_LISTED).await.unwrap()),
        ["1", "2", "4"]
    );
    assert_eq!(
        instance_ids(instances.list_instances(2).await.unwrap()),
        ["1", "2"]
    );
}

/// What one process registered, another lists; and a process that has not registered an
/// instance itself (a new Lambda container) registers it again without harm.
async fn instances_stay_listed_for_a_new_process(backend: Backend) {
    let Some((stores, guard)) = fresh_stores(backend).await else {
        return;
    };
    stores
        .contacts
        .commit_event(&claim("a"), &contact("7", "x", 1), None, &[])
        .await
        .unwrap();
    let again = guard.same_stores_in_a_new_process().await;
    again
        .contacts
        .commit_event(&claim("b"), &contact("7", "y", 1), None, &[])
        .await
        .unwrap();
    for stores in [&stores, &again] {
        assert_eq!(
            instance_ids(stores.instances.list_instances(MAX_LISTED).await.unwrap()),
            ["7"]
        );
    }
}

/// A data folder written before the registry existed lists its instances once it is opened:
/// the registry table is dropped here as such a file never had it.
#[tokio::test]
async fn an_embedded_file_from_before_the_registry_lists_its_instances() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("engine.redb");
    {
        let store = shared::store::EmbeddedStore::open(&path).unwrap();
        for (key, instance, id) in [("a", "2", "x"), ("b", "2", "y"), ("c", "1\u{10FFFF}", "z")] {
            store
                .commit_event(&claim(key), &contact(instance, id, 1), None, &[])
                .await
                .unwrap();
        }
        shared::rules::store::RuleStore::create_rule(&store, &rule("4", "alpha"), 10)
            .await
            .unwrap();
    }
    {
        let db = once_free(|| redb::Database::create(&path).ok()).await;
        let txn = db.begin_write().unwrap();
        let registry: redb::TableDefinition<&str, ()> = redb::TableDefinition::new("instances");
        assert!(txn.delete_table(registry).unwrap());
        txn.commit().unwrap();
    }
    let store = once_free(|| shared::store::EmbeddedStore::open(&path).ok()).await;
    let instances = shared::instances::InstanceStore::list_instances(&store, MAX_LISTED)
        .await
        .unwrap();
    assert_eq!(instance_ids(instances), ["1\u{10FFFF}", "2", "4"]);
}

/// `open` once the file is free: a dropped store's writer task lets go of the file just after
/// its last answer, as a stopped process would.
async fn once_free<T>(open: impl Fn() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(opened) = open() {
            return opened;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the file stayed open");
}
