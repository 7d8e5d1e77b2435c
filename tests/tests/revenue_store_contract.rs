//! The contract every `RevenueStore` implementation keeps, run against each of them.

use integration_tests::*;
use shared::ids::{ContactId, InstanceId, OfferId};
use shared::revenue::attribution::CreditWindow;
use shared::revenue::store::{ConversionWrite, MAX_WAITING_PER_CLICK, RevenueStore, SendWrite};
use shared::revenue::{
    Amount, Click, Conversion, ConversionStatus, Credit, Currency, DestinationUrl, Dimension,
    Journey, Network, Offer, Postback, SendRecord, Tally,
};
use shared::time::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;

on_every_store!(
    offers_are_created_replaced_loaded_and_listed,
    sends_are_stored_once_and_a_repeated_code_answers_the_stored_send,
    clicks_are_recorded_and_loaded_once,
    the_first_click_is_the_earliest_of_that_contact_and_offer_inside_the_window,
    a_duplicate_conversion_answers_the_stored_one_and_counts_nothing,
    concurrent_conversions_of_one_key_have_one_winner,
    the_journey_lists_one_contacts_records_in_time_order,
    report_counters_add_up_exactly_for_every_grouping_and_only_inside_the_days,
    conversions_whose_ids_hold_the_separator_do_not_collide,
    unknown_click_conversions_wait_for_their_click_and_are_reattributed_once,
);

const INSTANCE: &str = "1";

async fn store(backend: Backend) -> Option<(Arc<dyn RevenueStore>, StoreGuard)> {
    let (stores, guard) = fresh_stores(backend).await?;
    Some((stores.revenue, guard))
}

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn millis(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap()
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn instance() -> InstanceId {
    InstanceId::parse(INSTANCE).unwrap()
}

fn contact_id(id: &str) -> ContactId {
    ContactId::parse(id).unwrap()
}

fn offer_id(id: &str) -> OfferId {
    OfferId::parse(id).unwrap()
}

fn offer(id: &str, name: &str) -> Offer {
    Offer {
        offer_id: offer_id(id),
        name: name.to_owned(),
        destination_url: DestinationUrl::parse("https://shop.example/p?sub={click_id}").unwrap(),
        click_window_days: 30,
        view_window_days: 0,
        payout: Some(amount("12.50")),
        currency: currency("EUR"),
        created_at: ts("2026-03-01T10:00:00.000Z"),
        updated_at: ts("2026-03-01T10:00:00.000Z"),
    }
}

/// A send to `contact` of instance [`INSTANCE`]; its message id is `m-<code>`, its campaign
/// `spring`, its creative `red`.
fn send(
    code: &str,
    contact: &str,
    offer: &str,
    currency_code: &str,
    sent_at: Timestamp,
) -> SendRecord {
    SendRecord {
        send_id: format!("send-{code}"),
        code: code.to_owned(),
        instance_id: instance(),
        contact_id: contact_id(contact),
        message_id: format!("m-{code}"),
        campaign: "spring".to_owned(),
        creative: "red".to_owned(),
        offer_id: offer_id(offer),
        currency: currency(currency_code),
        sent_at,
    }
}

fn click(id: &str, send: &SendRecord, clicked_at: Timestamp) -> Click {
    Click::new(
        id.to_owned(),
        send,
        &offer(send.offer_id.as_str(), "Offer"),
        clicked_at,
        Some("Mozilla/5.0 (Zoë)".to_owned()),
        Some("a1b2c3".to_owned()),
    )
}

/// A conversion reported for `click`, credited to `credited` when given.
fn conversion(
    id: &str,
    click: &Click,
    credited: Option<&Click>,
    payout: &str,
    currency_code: &str,
    converted_at: Timestamp,
) -> Conversion {
    Conversion {
        conversion_key: format!("generic#{id}"),
        network: Network::Generic,
        conversion_id: id.to_owned(),
        click_id: click.click_id.clone(),
        offer_id: None,
        event: None,
        payout: amount(payout),
        currency: currency(currency_code),
        converted_at,
        received_at: converted_at.plus_seconds(5),
        status: if credited.is_some() {
            ConversionStatus::Attributed
        } else {
            ConversionStatus::OutsideWindow
        },
        instance_id: Some(click.instance_id.clone()),
        contact_id: Some(click.contact_id.clone()),
        credited: credited.map(Credit::from),
        window_clicks: Vec::new(),
    }
}

/// A conversion whose click is unknown: no contact, no credit.
fn unknown_click_conversion(id: &str, payout: &str, converted_at: Timestamp) -> Conversion {
    Conversion {
        conversion_key: format!("generic#{id}"),
        network: Network::Generic,
        conversion_id: id.to_owned(),
        click_id: "no-such-click".to_owned(),
        offer_id: None,
        event: Some("purchase".to_owned()),
        payout: amount(payout),
        currency: currency("USD"),
        converted_at,
        received_at: converted_at,
        status: ConversionStatus::UnknownClick,
        instance_id: None,
        contact_id: None,
        credited: None,
        window_clicks: Vec::new(),
    }
}

fn tally(sends: u64, clicks: u64, conversions: u64, revenue: &str) -> Tally {
    Tally {
        sends,
        clicks,
        conversions,
        revenue: amount(revenue),
        ..Tally::default()
    }
}

/// The counters of `dimension` over the days, summed per (key, currency).
async fn tallies(
    store: &dyn RevenueStore,
    dimension: Dimension,
    first_day: &str,
    last_day: &str,
) -> BTreeMap<(String, String), Tally> {
    let counters = store
        .load_report_counters(dimension, first_day, last_day)
        .await
        .unwrap();
    let mut summed: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for counter in counters {
        assert_eq!(counter.dimension, dimension);
        assert!(
            first_day <= counter.day.as_str() && counter.day.as_str() <= last_day,
            "{} is outside {first_day}..={last_day}",
            counter.day
        );
        summed
            .entry((counter.key, counter.currency.as_str().to_owned()))
            .or_default()
            .add(&counter.tally);
    }
    // The conversions here are credited without the window's clicks, so their credited click
    // stands alone: every model gives its row all the click-through revenue (none by day, a
    // grouping the models have not). Checked, then set aside for the expectations below.
    for ((key, _), tally) in summed.iter_mut() {
        let models = std::mem::take(&mut tally.models);
        let expected = if dimension == Dimension::Day {
            Amount::ZERO
        } else {
            tally.revenue
        };
        for model in [
            models.last_click,
            models.linear,
            models.time_decay,
            models.position_based,
        ] {
            assert_eq!(model, expected, "{dimension:?} {key}: {models:?}");
        }
    }
    summed
}

/// The tallies of one day summed over every key and currency of `dimension`.
async fn total(store: &dyn RevenueStore, dimension: Dimension, day: &str) -> Tally {
    let mut sum = Tally::default();
    for tally in tallies(store, dimension, day, day).await.values() {
        sum.add(tally);
    }
    sum
}

fn expected(rows: &[(&str, &str, Tally)]) -> BTreeMap<(String, String), Tally> {
    rows.iter()
        .map(|(key, currency, tally)| (((*key).to_owned(), (*currency).to_owned()), *tally))
        .collect()
}

async fn offers_are_created_replaced_loaded_and_listed(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    assert_eq!(store.load_offer(&offer_id("shoes")).await.unwrap(), None);
    assert_eq!(store.list_offers().await.unwrap(), []);

    let (shoes, boots) = (offer("shoes", "Shoes"), offer("boots", "Boots"));
    assert!(store.create_offer(&shoes).await.unwrap());
    let mut no_payout = boots.clone();
    no_payout.payout = None;
    assert!(store.create_offer(&no_payout).await.unwrap());
    assert_eq!(
        store.load_offer(&offer_id("shoes")).await.unwrap(),
        Some(shoes.clone()),
        "read back field for field"
    );
    assert_eq!(
        store.load_offer(&offer_id("boots")).await.unwrap(),
        Some(no_payout.clone())
    );

    let taken = offer("shoes", "Other shoes");
    assert!(
        !store.create_offer(&taken).await.unwrap(),
        "the id is taken"
    );
    assert_eq!(
        store.load_offer(&offer_id("shoes")).await.unwrap(),
        Some(shoes.clone()),
        "a refused create writes nothing"
    );

    let missing = offer("hats", "Hats");
    assert!(
        !store.replace_offer(&missing).await.unwrap(),
        "nothing to replace"
    );
    assert_eq!(store.load_offer(&offer_id("hats")).await.unwrap(), None);

    let mut renamed = shoes.clone();
    renamed.name = "Running shoes".to_owned();
    renamed.click_window_days = 7;
    renamed.payout = Some(amount("0.05"));
    renamed.updated_at = ts("2026-03-02T08:00:00.123Z");
    assert!(store.replace_offer(&renamed).await.unwrap());
    assert_eq!(
        store.load_offer(&offer_id("shoes")).await.unwrap(),
        Some(renamed.clone())
    );

    assert_eq!(
        store.list_offers().await.unwrap(),
        [no_payout, renamed],
        "every offer, by id"
    );
}

async fn sends_are_stored_once_and_a_repeated_code_answers_the_stored_send(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let day = "2026-03-01";
    let first = send("s1", "c1", "shoes", "USD", ts("2026-03-01T10:00:00.000Z"));
    let second = send("s2", "c2", "shoes", "USD", ts("2026-03-01T10:00:01.000Z"));
    assert_eq!(
        store
            .create_sends(&[first.clone(), second.clone()])
            .await
            .unwrap(),
        [SendWrite::Created, SendWrite::Created]
    );
    assert_eq!(store.load_send("s1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.load_send("s2").await.unwrap(), Some(second.clone()));
    assert_eq!(store.load_send("s9").await.unwrap(), None);

    // A retried batch: the stored send answers for its code, whatever the retry carries.
    let mut retried = first.clone();
    retried.campaign = "autumn".to_owned();
    let third = send("s3", "c3", "shoes", "USD", ts("2026-03-01T10:00:02.000Z"));
    assert_eq!(
        store.create_sends(&[retried, third.clone()]).await.unwrap(),
        [
            SendWrite::Existing(Box::new(first.clone())),
            SendWrite::Created
        ]
    );
    assert_eq!(store.load_send("s1").await.unwrap(), Some(first.clone()));

    // A code twice in one batch: stored by its first send, answered by the second.
    let fourth = send("s4", "c4", "shoes", "USD", ts("2026-03-01T10:00:03.000Z"));
    let mut fourth_again = fourth.clone();
    fourth_again.creative = "blue".to_owned();
    assert_eq!(
        store
            .create_sends(&[fourth.clone(), fourth_again])
            .await
            .unwrap(),
        [
            SendWrite::Created,
            SendWrite::Existing(Box::new(fourth.clone()))
        ]
    );
    assert_eq!(store.load_send("s4").await.unwrap(), Some(fourth));

    for dimension in Dimension::ALL {
        assert_eq!(
            total(store.as_ref(), dimension, day).await,
            tally(4, 0, 0, "0"),
            "{dimension:?}: four sends, none counted twice"
        );
    }
    assert_eq!(
        tallies(store.as_ref(), Dimension::Campaign, day, day).await,
        expected(&[("spring", "USD", tally(4, 0, 0, "0"))]),
        "the retry's campaign counts nowhere"
    );
}

async fn clicks_are_recorded_and_loaded_once(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let sent = send("s1", "c1", "shoes", "USD", ts("2026-03-01T10:00:00.000Z"));
    store
        .create_sends(std::slice::from_ref(&sent))
        .await
        .unwrap();
    let first = click("k1", &sent, ts("2026-03-01T11:00:00.000Z"));
    let mut bare = click("k2", &sent, ts("2026-03-01T11:00:00.001Z"));
    bare.user_agent = None;
    bare.ip_hash = None;
    store.record_click(&first).await.unwrap();
    store.record_click(&bare).await.unwrap();
    assert_eq!(store.load_click("k1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.load_click("k2").await.unwrap(), Some(bare));
    assert_eq!(store.load_click("k3").await.unwrap(), None);

    // Recording a click again (a queued click redelivered, a write that committed but
    // answered an error) leaves the stored one as it is and counts nothing.
    store.record_click(&first).await.unwrap();
    let mut again = first.clone();
    again.clicked_at = ts("2026-03-01T12:00:00.000Z");
    store.record_click(&again).await.unwrap();
    assert_eq!(store.load_click("k1").await.unwrap(), Some(first));
    assert_eq!(
        total(store.as_ref(), Dimension::Offer, "2026-03-01").await,
        tally(1, 2, 0, "0"),
        "a click id counts once"
    );
    assert_eq!(
        store
            .contact_journey(&instance(), &contact_id("c1"))
            .await
            .unwrap()
            .clicks
            .len(),
        2
    );
}

async fn the_first_click_is_the_earliest_of_that_contact_and_offer_inside_the_window(
    backend: Backend,
) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let from = 1_772_000_000_000; // 2026-02-25, in milliseconds
    let to = from + 3_600_000;
    let shoes = send("s1", "c1", "shoes", "USD", millis(from - 60_000));
    // An offer id that extends "shoes": its clicks must not pass for shoes clicks.
    let shoes2 = send("s2", "c1", "shoes2", "USD", millis(from - 60_000));
    let other_contact = send("s3", "c2", "shoes", "USD", millis(from - 60_000));
    let mut other_instance = send("s4", "c1", "shoes", "USD", millis(from - 60_000));
    other_instance.instance_id = InstanceId::parse("2").unwrap();
    store
        .create_sends(&[
            shoes.clone(),
            shoes2.clone(),
            other_contact.clone(),
            other_instance.clone(),
        ])
        .await
        .unwrap();

    let before = click("kbefore", &shoes, millis(from - 1));
    let at_from = click("kfrom", &shoes, millis(from));
    let middle = click("kmiddle", &shoes, millis(from + 10_000));
    let at_to = click("kto", &shoes, millis(to));
    let after = click("kafter", &shoes, millis(to + 1));
    let other_offer = click("koffer", &shoes2, millis(from + 1));
    let other_person = click("kperson", &other_contact, millis(from + 2));
    let other_place = click("kplace", &other_instance, millis(from + 3));
    for recorded in [
        &after,
        &middle,
        &other_offer,
        &at_to,
        &other_person,
        &before,
        &other_place,
        &at_from,
    ] {
        store.record_click(recorded).await.unwrap();
    }

    let (c1, shoes_id) = (contact_id("c1"), offer_id("shoes"));
    let first = async |from: i64, to: i64| {
        let window = CreditWindow {
            from: millis(from),
            to: millis(to),
        };
        let clicks = store
            .window_clicks(&instance(), &c1, &shoes_id, &window)
            .await
            .unwrap();
        assert!(
            clicks.is_sorted_by_key(|click| click.clicked_at),
            "earliest first"
        );
        clicks.into_iter().next()
    };
    assert_eq!(
        first(from, to).await,
        Some(at_from.clone()),
        "a click exactly at the start counts; one a millisecond before does not"
    );
    assert_eq!(first(from - 1, to).await, Some(before));
    assert_eq!(
        first(from + 1, to).await,
        Some(middle),
        "not another offer's, contact's or instance's earlier click"
    );
    assert_eq!(
        first(to, to + 3_600_000).await,
        Some(at_to.clone()),
        "a click exactly at the end counts"
    );
    assert_eq!(first(to + 1, to + 1).await, Some(after));
    assert_eq!(first(to + 2, to + 3_600_000).await, None);
    assert_eq!(first(from - 3_600_000, from - 2).await, None);

    let window = CreditWindow {
        from: millis(from),
        to: millis(to),
    };
    assert_eq!(
        store
            .window_clicks(&instance(), &contact_id("c1"), &offer_id("shoes2"), &window)
            .await
            .unwrap()
            .into_iter()
            .next(),
        Some(other_offer)
    );
    assert_eq!(
        store
            .window_clicks(&instance(), &contact_id("c2"), &offer_id("shoes"), &window)
            .await
            .unwrap()
            .into_iter()
            .next(),
        Some(other_person)
    );
    assert_eq!(
        store
            .window_clicks(&instance(), &contact_id("c9"), &offer_id("shoes"), &window)
            .await
            .unwrap()
            .into_iter()
            .next(),
        None
    );
    assert_eq!(
        store
            .window_clicks(&instance(), &contact_id("c1"), &offer_id("shoe"), &window)
            .await
            .unwrap()
            .into_iter()
            .next(),
        None,
        "an offer id that is a prefix of another finds nothing of it"
    );
}

async fn a_duplicate_conversion_answers_the_stored_one_and_counts_nothing(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let day = "2026-03-01";
    let sent = send("s1", "c1", "shoes", "USD", ts("2026-03-01T10:00:00.000Z"));
    let clicked = click("k1", &sent, ts("2026-03-01T11:00:00.000Z"));
    store
        .create_sends(std::slice::from_ref(&sent))
        .await
        .unwrap();
    store.record_click(&clicked).await.unwrap();

    let original = conversion(
        "v1",
        &clicked,
        Some(&clicked),
        "5.00",
        "USD",
        ts("2026-03-01T12:00:00.000Z"),
    );
    assert_eq!(
        store.record_conversion(&original).await.unwrap(),
        ConversionWrite::Recorded
    );
    let counted = tally(1, 1, 1, "5");
    assert_eq!(
        total(store.as_ref(), Dimension::Message, day).await,
        counted
    );

    let mut retried = original.clone();
    retried.payout = amount("9.99");
    retried.received_at = ts("2026-03-01T13:00:00.000Z");
    assert_eq!(
        store.record_conversion(&retried).await.unwrap(),
        ConversionWrite::Duplicate(Box::new(original.clone()))
    );
    for dimension in Dimension::ALL {
        assert_eq!(
            total(store.as_ref(), dimension, day).await,
            counted,
            "{dimension:?}: the duplicate counts nowhere"
        );
    }

    // Uncredited conversions are kept (and deduplicated) but count nowhere.
    let unknown = unknown_click_conversion("v2", "100", ts("2026-03-01T14:00:00.000Z"));
    assert_eq!(
        store.record_conversion(&unknown).await.unwrap(),
        ConversionWrite::Recorded
    );
    assert_eq!(
        store.record_conversion(&unknown).await.unwrap(),
        ConversionWrite::Duplicate(Box::new(unknown.clone()))
    );
    let outside = conversion(
        "v3",
        &clicked,
        None,
        "3",
        "USD",
        ts("2026-03-01T15:00:00.000Z"),
    );
    assert_eq!(
        store.record_conversion(&outside).await.unwrap(),
        ConversionWrite::Recorded
    );
    assert_eq!(
        store.record_conversion(&outside).await.unwrap(),
        ConversionWrite::Duplicate(Box::new(outside.clone()))
    );
    assert_eq!(total(store.as_ref(), Dimension::Day, day).await, counted);
}

async fn concurrent_conversions_of_one_key_have_one_winner(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let sent = send("s1", "c1", "shoes", "USD", ts("2026-03-01T10:00:00.000Z"));
    let clicked = click("k1", &sent, ts("2026-03-01T11:00:00.000Z"));
    store
        .create_sends(std::slice::from_ref(&sent))
        .await
        .unwrap();
    store.record_click(&clicked).await.unwrap();

    let attempts: Vec<Conversion> = (0..8)
        .map(|n| {
            let mut attempt = conversion(
                "v1",
                &clicked,
                Some(&clicked),
                &format!("1.0{n}"),
                "USD",
                ts("2026-03-01T12:00:00.000Z"),
            );
            attempt.received_at = millis(1_772_400_000_000 + n);
            attempt
        })
        .collect();
    let tasks: Vec<_> = attempts
        .iter()
        .cloned()
        .map(|attempt| {
            let store = store.clone();
            tokio::spawn(async move { store.record_conversion(&attempt).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let winners: Vec<usize> = (0..outcomes.len())
        .filter(|&n| outcomes[n] == ConversionWrite::Recorded)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one is recorded: {outcomes:?}");
    let winner = &attempts[winners[0]];
    for (n, outcome) in outcomes.iter().enumerate() {
        if n != winners[0] {
            assert_eq!(
                outcome,
                &ConversionWrite::Duplicate(Box::new(winner.clone()))
            );
        }
    }
    for dimension in Dimension::ALL {
        assert_eq!(
            total(store.as_ref(), dimension, "2026-03-01").await,
            Tally {
                sends: 1,
                clicks: 1,
                conversions: 1,
                revenue: winner.payout,
                ..Tally::default()
            },
            "{dimension:?}: counted once"
        );
    }
}

async fn the_journey_lists_one_contacts_records_in_time_order(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let late_send = send("s1", "c1", "boots", "USD", ts("2026-03-01T12:00:00.000Z"));
    let early_send = send("s2", "c1", "shoes", "USD", ts("2026-03-01T09:00:00.000Z"));
    let their_send = send("s3", "c2", "shoes", "USD", ts("2026-03-01T08:00:00.000Z"));
    store
        .create_sends(&[late_send.clone(), early_send.clone(), their_send.clone()])
        .await
        .unwrap();

    // The index holds clicks by offer first: boots before shoes, whatever the time.
    let shoes_first = click("k1", &early_send, ts("2026-03-01T09:10:00.000Z"));
    let boots = click("k2", &late_send, ts("2026-03-01T12:10:00.000Z"));
    let shoes_again = click("k3", &early_send, ts("2026-03-01T12:20:00.000Z"));
    let same_time = click("k0", &early_send, ts("2026-03-01T12:20:00.000Z"));
    let theirs = click("k4", &their_send, ts("2026-03-01T08:30:00.000Z"));
    for recorded in [&shoes_again, &boots, &theirs, &shoes_first, &same_time] {
        store.record_click(recorded).await.unwrap();
    }

    let late_conversion = conversion(
        "v1",
        &boots,
        Some(&boots),
        "2",
        "USD",
        ts("2026-03-01T15:00:00.000Z"),
    );
    let early_conversion = conversion(
        "v2",
        &shoes_first,
        None,
        "1",
        "USD",
        ts("2026-03-01T13:00:00.000Z"),
    );
    let their_conversion = conversion(
        "v3",
        &theirs,
        Some(&theirs),
        "1",
        "USD",
        ts("2026-03-01T10:00:00.000Z"),
    );
    let nobodys = unknown_click_conversion("v4", "1", ts("2026-03-01T11:00:00.000Z"));
    for recorded in [
        &late_conversion,
        &their_conversion,
        &nobodys,
        &early_conversion,
    ] {
        assert_eq!(
            store.record_conversion(recorded).await.unwrap(),
            ConversionWrite::Recorded
        );
    }

    let journey = store
        .contact_journey(&instance(), &contact_id("c1"))
        .await
        .unwrap();
    assert_eq!(
        journey,
        Journey {
            sends: vec![early_send, late_send],
            clicks: vec![shoes_first, boots, same_time, shoes_again],
            conversions: vec![early_conversion, late_conversion],
        }
    );
    assert_eq!(
        store
            .contact_journey(&instance(), &contact_id("c2"))
            .await
            .unwrap(),
        Journey {
            sends: vec![their_send],
            clicks: vec![theirs],
            conversions: vec![their_conversion],
        }
    );
    assert_eq!(
        store
            .contact_journey(&InstanceId::parse("2").unwrap(), &contact_id("c1"))
            .await
            .unwrap(),
        Journey::default(),
        "another instance's contact of the same id has none of it"
    );
}

async fn report_counters_add_up_exactly_for_every_grouping_and_only_inside_the_days(
    backend: Backend,
) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let campaign = |mut sent: SendRecord, campaign: &str, creative: &str| {
        sent.campaign = campaign.to_owned();
        sent.creative = creative.to_owned();
        sent
    };
    // Before the range, its first day, its last day (to the last millisecond), after it.
    let s0 = send("s0", "c1", "shoes", "USD", ts("2026-02-28T23:59:59.999Z"));
    let s1 = send("s1", "c1", "shoes", "USD", ts("2026-03-01T00:00:00.000Z"));
    let s2 = campaign(
        send("s2", "c2", "shoes", "USD", ts("2026-03-01T11:00:00.000Z")),
        "spring",
        "blue",
    );
    let s3 = campaign(
        send("s3", "c3", "boots", "EUR", ts("2026-03-02T23:59:59.999Z")),
        "summer",
        "red",
    );
    let s4 = send("s4", "c1", "shoes", "USD", ts("2026-03-03T00:00:00.000Z"));
    store
        .create_sends(&[s0.clone(), s1.clone(), s2.clone(), s3.clone(), s4.clone()])
        .await
        .unwrap();

    let k1 = click("k1", &s1, ts("2026-03-01T12:00:00.000Z"));
    let k2 = click("k2", &s1, ts("2026-03-01T12:30:00.000Z"));
    let k3 = click("k3", &s2, ts("2026-03-01T13:00:00.000Z"));
    let k4 = click("k4", &s3, ts("2026-03-02T23:59:59.999Z"));
    let k5 = click("k5", &s4, ts("2026-03-03T01:00:00.000Z"));
    for recorded in [&k1, &k2, &k3, &k4, &k5] {
        store.record_click(recorded).await.unwrap();
    }

    let conversions = [
        conversion(
            "v1",
            &k1,
            Some(&k1),
            "0.10",
            "USD",
            ts("2026-03-01T20:00:00.000Z"),
        ),
        // Counted on the day it converted, under the send's labels.
        conversion(
            "v2",
            &k3,
            Some(&k3),
            "0.20",
            "USD",
            ts("2026-03-02T08:00:00.000Z"),
        ),
        conversion(
            "v3",
            &k4,
            Some(&k4),
            "1.5",
            "EUR",
            ts("2026-03-02T23:00:00.000Z"),
        ),
        // Credited to an in-range click, converted after the range.
        conversion(
            "v4",
            &k2,
            Some(&k2),
            "7",
            "USD",
            ts("2026-03-03T00:00:00.000Z"),
        ),
        // Not credited: counts nowhere.
        conversion("v5", &k2, None, "40", "USD", ts("2026-03-01T21:00:00.000Z")),
        unknown_click_conversion("v6", "100", ts("2026-03-01T22:00:00.000Z")),
    ];
    for recorded in &conversions {
        assert_eq!(
            store.record_conversion(recorded).await.unwrap(),
            ConversionWrite::Recorded
        );
    }

    let (first, last) = ("2026-03-01", "2026-03-02");
    let wanted = [
        (
            Dimension::Message,
            expected(&[
                ("m-s1", "USD", tally(1, 2, 1, "0.10")),
                ("m-s2", "USD", tally(1, 1, 1, "0.20")),
                ("m-s3", "EUR", tally(1, 1, 1, "1.5")),
            ]),
        ),
        (
            Dimension::Creative,
            expected(&[
                ("blue", "USD", tally(1, 1, 1, "0.20")),
                ("red", "EUR", tally(1, 1, 1, "1.5")),
                ("red", "USD", tally(1, 2, 1, "0.10")),
            ]),
        ),
        (
            Dimension::Offer,
            expected(&[
                ("boots", "EUR", tally(1, 1, 1, "1.5")),
                ("shoes", "USD", tally(2, 3, 2, "0.30")),
            ]),
        ),
        (
            Dimension::Campaign,
            expected(&[
                ("spring", "USD", tally(2, 3, 2, "0.30")),
                ("summer", "EUR", tally(1, 1, 1, "1.5")),
            ]),
        ),
        (
            Dimension::Day,
            expected(&[
                ("2026-03-01", "USD", tally(2, 3, 1, "0.10")),
                ("2026-03-02", "EUR", tally(1, 1, 1, "1.5")),
                ("2026-03-02", "USD", tally(0, 0, 1, "0.20")),
            ]),
        ),
    ];
    for (dimension, rows) in wanted {
        assert_eq!(
            tallies(store.as_ref(), dimension, first, last).await,
            rows,
            "{dimension:?}"
        );
    }
    let shoes = tallies(store.as_ref(), Dimension::Offer, first, last).await
        [&("shoes".to_owned(), "USD".to_owned())];
    assert_eq!(shoes.revenue.to_string(), "0.30", "0.10 + 0.20, exactly");

    // The days on either side, each on its own.
    assert_eq!(
        tallies(
            store.as_ref(),
            Dimension::Message,
            "2026-02-28",
            "2026-02-28"
        )
        .await,
        expected(&[("m-s0", "USD", tally(1, 0, 0, "0"))])
    );
    assert_eq!(
        tallies(
            store.as_ref(),
            Dimension::Campaign,
            "2026-03-03",
            "2026-03-03"
        )
        .await,
        expected(&[("spring", "USD", tally(1, 1, 1, "7"))])
    );
    assert_eq!(
        tallies(store.as_ref(), Dimension::Day, "2026-03-04", "2026-03-31").await,
        BTreeMap::new()
    );
    assert_eq!(
        tallies(store.as_ref(), Dimension::Offer, "2026-01-01", "2026-12-31").await
            [&("shoes".to_owned(), "USD".to_owned())],
        tally(4, 4, 3, "7.30"),
        "a wide range holds every day"
    );
}

/// A DynamoDB stand-in that cancels the first `conflicts` transactions for a conflict with
/// another one and accepts the rest; answers its address and the number of calls so far.
async fn conflicting_dynamo(conflicts: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let answer = move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
            let call = seen.fetch_add(1, Ordering::SeqCst);
            let json = [("content-type", "application/x-amz-json-1.0")];
            if call < conflicts {
                let body = serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",
                    "CancellationReasons": [
                        {"Code": "None"},
                        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                    ]
                });
                (StatusCode::BAD_REQUEST, json, body.to_string())
            } else {
                (StatusCode::OK, json, "{}".to_owned())
            }
        }
    };
    let app = axum::Router::new().route("/", axum::routing::post(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), calls)
}

fn dynamo_revenue_store(endpoint: &str) -> shared::store::dynamo::revenue::DynamoRevenueStore {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .build();
    shared::store::dynamo::revenue::DynamoRevenueStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        shared::store::dynamo::revenue::RevenueTables::prefixed("conflicts"),
    )
}

/// DynamoDB Local runs transactions one at a time, so the suite above never sees a conflict:
/// this runs the DynamoDB store against a stand-in that answers with conflicts.
#[tokio::test]
async fn dynamo_transactions_that_conflict_are_retried_then_given_up() {
    use std::sync::atomic::Ordering;
    let sent = send("s1", "c1", "shoes", "USD", ts("2026-03-01T10:00:00.000Z"));
    let clicked = click("k1", &sent, ts("2026-03-01T11:00:00.000Z"));

    let (endpoint, calls) = conflicting_dynamo(2).await;
    let store = dynamo_revenue_store(&endpoint);
    store.record_click(&clicked).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two conflicts, then written"
    );
    assert_eq!(
        store
            .create_sends(std::slice::from_ref(&sent))
            .await
            .unwrap(),
        [SendWrite::Created]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    let (endpoint, calls) = conflicting_dynamo(usize::MAX).await;
    let store = dynamo_revenue_store(&endpoint);
    let error = store.record_click(&clicked).await.unwrap_err();
    assert!(
        matches!(error, shared::store::StoreError::Unavailable(_)),
        "{error:?}"
    );
    let tries = calls.load(Ordering::SeqCst);
    assert!((2..=10).contains(&tries), "a few tries, not {tries}");
}

/// Dedupe keys made from ids that hold the key separator (`#`) or its escape (`%`): postbacks
/// that would have shared a key with a plain `#` join are each recorded once.
async fn conversions_whose_ids_hold_the_separator_do_not_collide(backend: Backend) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let now = ts("2026-03-01T12:00:00.000Z");
    let postbacks: [&[(&str, &str)]; 6] = [
        &[("click_id", "a#b"), ("event", "c")],
        &[("click_id", "a"), ("event", "b#c")],
        &[("click_id", "a%23b"), ("event", "c")],
        &[("click_id", "a"), ("conversion_id", "b#c")],
        &[("click_id", "a"), ("conversion_id", "b%23c")],
        &[("click_id", "a"), ("conversion_id", "b")],
    ];
    let conversions: Vec<Conversion> = postbacks
        .iter()
        .map(|params| {
            let params: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let postback = Postback::parse(Network::Tune, &params, now).unwrap();
            Conversion {
                conversion_key: postback.conversion_key(),
                network: postback.network,
                conversion_id: postback.reported_conversion_id(),
                click_id: postback.click_id().unwrap().to_owned(),
                offer_id: None,
                event: postback.event.clone(),
                payout: Amount::ZERO,
                currency: postback.currency,
                converted_at: now,
                received_at: now,
                status: ConversionStatus::UnknownClick,
                instance_id: None,
                contact_id: None,
                credited: None,
                window_clicks: Vec::new(),
            }
        })
        .collect();
    for conversion in &conversions {
        assert_eq!(
            store.record_conversion(conversion).await.unwrap(),
            ConversionWrite::Recorded,
            "{} collided",
            conversion.conversion_key
        );
    }
    for conversion in &conversions {
        assert_eq!(
            store.record_conversion(conversion).await.unwrap(),
            ConversionWrite::Duplicate(Box::new(conversion.clone())),
            "each key answers its own conversion"
        );
    }
}

/// An `unknown_click` conversion is stored only while its click is absent, waits for that click
/// by key, and is replaced (with its counters) once however often that is asked.
async fn unknown_click_conversions_wait_for_their_click_and_are_reattributed_once(
    backend: Backend,
) {
    let Some((store, _guard)) = store(backend).await else {
        return;
    };
    let day = "2026-03-01";
    let sent = send("s1", "c1", "shoes", "USD", ts("2026-03-01T10:00:00.000Z"));
    store
        .create_sends(std::slice::from_ref(&sent))
        .await
        .unwrap();
    let late = click("late", &sent, ts("2026-03-01T11:00:00.000Z"));
    let mut waiting = unknown_click_conversion("w1", "7.25", ts("2026-03-01T12:00:00.000Z"));
    waiting.click_id = late.click_id.clone();
    let mut other = unknown_click_conversion("w2", "1", ts("2026-03-01T12:30:00.000Z"));
    other.click_id = late.click_id.clone();
    for conversion in [&waiting, &other] {
        assert_eq!(
            store.record_conversion(conversion).await.unwrap(),
            ConversionWrite::Recorded
        );
    }
    assert!(
        store
            .waiting_conversions("nobody")
            .await
            .unwrap()
            .is_empty()
    );
    let mut found = store.waiting_conversions("late").await.unwrap();
    found.sort_by(|a, b| a.conversion_key.cmp(&b.conversion_key));
    assert_eq!(found, [waiting.clone(), other.clone()]);

    store.record_click(&late).await.unwrap();
    // Once the click is stored, an unknown-click conversion for it is refused, unwritten.
    let mut after = unknown_click_conversion("w3", "2", ts("2026-03-01T13:00:00.000Z"));
    after.click_id = late.click_id.clone();
    assert_eq!(
        store.record_conversion(&after).await.unwrap(),
        ConversionWrite::ClickArrived
    );
    assert_eq!(
        store.record_conversion(&after).await.unwrap(),
        ConversionWrite::ClickArrived,
        "nothing was stored"
    );

    let mut credited = conversion(
        "w1",
        &late,
        Some(&late),
        "7.25",
        "USD",
        waiting.converted_at,
    );
    credited.conversion_key = waiting.conversion_key.clone();
    credited.event = waiting.event.clone();
    credited.received_at = waiting.received_at;
    assert!(store.reattribute_conversion(&credited).await.unwrap());
    assert!(
        !store.reattribute_conversion(&credited).await.unwrap(),
        "a second re-attribution writes nothing"
    );
    for dimension in Dimension::ALL {
        assert_eq!(
            total(store.as_ref(), dimension, day).await,
            tally(1, 1, 1, "7.25"),
            "{dimension:?}"
        );
    }
    assert_eq!(
        store.waiting_conversions("late").await.unwrap(),
        [other.clone()],
        "the re-attributed one waits no more"
    );
    let journey = store
        .contact_journey(&instance(), &contact_id("c1"))
        .await
        .unwrap();
    assert_eq!(journey.conversions, [credited.clone()]);
    assert_eq!(
        store.record_conversion(&waiting).await.unwrap(),
        ConversionWrite::Duplicate(Box::new(credited))
    );

    // The conversions waiting for one click id are bounded; later ones are stored, unwaiting.
    for n in 0..=MAX_WAITING_PER_CLICK {
        let mut many = unknown_click_conversion(&format!("m{n}"), "1", ts("2026-03-02T00:00:00Z"));
        many.click_id = "flood".to_owned();
        assert_eq!(
            store.record_conversion(&many).await.unwrap(),
            ConversionWrite::Recorded
        );
    }
    assert_eq!(
        store.waiting_conversions("flood").await.unwrap().len(),
        MAX_WAITING_PER_CLICK
    );
}
