//! Property tests of the parsers that read what strangers send: Meta deliveries, postbacks, rule
//! drafts (and the rules they compile to), offers' destination URLs. Whatever the bytes, each
//! answers `Ok` or a typed error, never a panic; what it accepts keeps its promises.
//!
//! Each property runs a bounded number of cases (`CASES`, a few hundred) so a CI run stays
//! short. Failures are not persisted to files: a case found once becomes a plain regression
//! test at the end of this file.

use integration_tests::fixture_names;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use shared::contact::counters::bumps_for;
use shared::ids::InstanceId;
use shared::ingest::apply_event;
use shared::meta::{self, parse_delivery};
use shared::revenue::postback::read_params;
use shared::revenue::{DestinationUrl, Network, OfferDraft, Postback, SendDraft};
use shared::rules::{CompiledRules, RuleDraft, RuleId, normalize};
use shared::secret::Secret;
use shared::time::Timestamp;

const CASES: u32 = 512;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(1_763_976_000).unwrap()
}

// ------------------------------------------------------------------------------ strategies

/// Strings that tend to sit on edges: empty, blank, huge or negative numbers, dates near the
/// ends of chrono's range, unfilled macros, control characters, non-ASCII text.
fn edgy_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", " ", "0", "-1", "1.5", "1e400", "-0", "NaN", "inf", "12.50", "0.000000000000000000000000001",
            "99999999999999999999999999999", "-99999999999999999999999999999", "9223372036854775807",
            "-9223372036854775808", "18446744073709551616", "1700000000", "1700000000000",
            "8210266876799", "8210266876800", "99999999999999999999", "-62135596801",
            "2025-11-24T10:00:00Z", "2025-11-24T10:00:00+14:00", "9999-12-31T23:59:59Z",
            "+262143-12-31T23:59:59Z", "{aff_sub}", "%7Bsub1%7D", "{", "}", "USD", "usd", "EUR", "XXX",
            "whatsapp_business_account", "page", "instagram", "messages", "ad", "post", "ADS",
            "SHORTLINK", "SHORTLINKS", "OPEN_THREAD", "CUSTOMER_CHAT_PLUGIN", "text", "audio",
            "https://fb.me/abc", "https://www.instagram.com/p/x", "http://", "https://[::1]:99999/",
            "wamid.HBgL", "106540352242922", "16505551234", "a#b", "a b", "\u{0}", "\u{7f}",
            "\u{202e}", "Ünïcödé ✓ 𝄞", "ß", "İ", "ﬃ", "\r\n\t",
        ]).prop_map(str::to_owned),
        2 => any::<String>(),
        1 => "[0-9]{0,40}",
        1 => any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// Keys Meta, the postback platforms and the admin API use, and a few that nobody does.
fn key() -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "object", "entry", "id", "time", "changes", "field", "value", "messaging_product",
            "metadata", "display_phone_number", "phone_number_id", "contacts", "profile", "name",
            "wa_id", "messages", "from", "timestamp", "type", "text", "body", "referral",
            "source_url", "source_id", "source_type", "headline", "media_type", "image_url",
            "video_url", "thumbnail_url", "ctwa_clid", "welcome_message", "statuses", "status",
            "recipient_id", "messaging", "sender", "recipient", "message", "mid", "is_echo",
            "postback", "payload", "title", "ref", "source", "ad_id", "ads_context_data",
            "ad_title", "photo_url", "post_id", "product_id", "read", "delivery", "audio",
            "image", "errors", "button", "interactive",
        ]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
    .boxed()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => edgy_string().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

/// JSON trees built from `key()` and `leaf()`: deep enough to get past the envelope.
fn json_tree(key: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One edit of a JSON value: walk down by `path` (each step picks a child modulo the count),
/// then replace what is there, or remove it from its parent.
fn mutate(value: &mut Value, path: &[usize], replacement: Value, remove: bool) {
    let Some((step, rest)) = path.split_first() else {
        *value = replacement;
        return;
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(step % map.len()).unwrap().clone();
            if rest.is_empty() && remove {
                map.remove(&key);
            } else {
                mutate(map.get_mut(&key).unwrap(), rest, replacement, remove);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let index = step % items.len();
            if rest.is_empty() && remove {
                items.remove(index);
            } else {
                mutate(&mut items[index], rest, replacement, remove);
            }
        }
        _ => *value = replacement,
    }
}

fn fixtures() -> Vec<Value> {
    fixture_names()
        .iter()
        .map(|name| serde_json::from_slice(&integration_tests::fixture(name)).unwrap())
        .collect()
}

/// A Meta delivery that is one fixture with a few random edits, mostly inside its entries
/// (an edit of the envelope itself only tests the first line of the parser).
fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(fixtures()), edits(), any::<bool>()).prop_map(
        |(mut delivery, edits, anywhere)| {
            for (path, replacement, remove) in edits {
                let target = if anywhere {
                    &mut delivery
                } else {
                    &mut delivery["entry"]
                };
                mutate(target, &path, replacement, remove);
            }
            serde_json::to_vec(&delivery).unwrap()
        },
    )
}

/// One to three edits for `mutate`: a path, a replacement, whether to remove instead.
fn edits() -> impl Strategy<Value = Vec<(Vec<usize>, Value, bool)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<usize>(), 1..8),
            json_tree(key()),
            any::<bool>(),
        ),
        1..4,
    )
}

/// A well-formed item of `template` with zero to three random edits.
fn edited(template: Value) -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(template.clone()),
        3 => edits().prop_map(move |edits| {
            let mut item = template.clone();
            for (path, replacement, remove) in edits {
                mutate(&mut item, &path, replacement, remove);
            }
            item
        }),
    ]
}

fn whatsapp_item() -> impl Strategy<Value = Value> {
    edited(json!({
        "from": "16505551234", "id": "wamid.1", "timestamp": "1763976000", "type": "text",
        "text": {"body": "hi"},
        "referral": {"source_url": "https://fb.me/x", "source_id": "1", "source_type": "ad",
                     "ctwa_clid": "c", "headline": "h", "media_type": "image"}
    }))
}

fn messaging_item() -> impl Strategy<Value = Value> {
    edited(json!({
        "sender": {"id": "7001"}, "recipient": {"id": "106540352242922"},
        "timestamp": 1_763_976_000_000_i64,
        "message": {"mid": "m.1", "text": "hi"},
        "referral": {"ref": "r", "source": "ADS", "type": "OPEN_THREAD", "ad_id": "9",
                     "ads_context_data": {"ad_title": "t", "photo_url": "https://x"}},
        "postback": {"title": "Get Started", "payload": "p",
                     "referral": {"ref": "r", "source": "SHORTLINK", "type": "OPEN_THREAD"}}
    }))
}

/// Runs a delivery through everything that is pure after the signature check: parsing, the
/// first-touch decision, the counters and the match job decision.
fn ingest_pure(body: &[u8]) {
    let Ok(delivery) = parse_delivery(body, now()) else {
        return;
    };
    for event in &delivery.events {
        let first = apply_event(None, event);
        let second = apply_event(Some(first.clone()), event);
        assert_eq!(second.version, first.version + 1);
        assert!(second.first_seen_at <= second.last_seen_at);
        bumps_for(None, &first);
        bumps_for(Some(&first), &second);
        let _ = serde_json::to_value(&second).unwrap();
    }
}

// ------------------------------------------------------------------------------ Meta

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn meta_parser_takes_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        ingest_pure(&body);
        let secret = Secret::new("s");
        let _ = meta::verify_signature(&secret, Some(&body), &body);
    }

    #[test]
    fn meta_parser_takes_arbitrary_json(tree in json_tree(key())) {
        ingest_pure(&serde_json::to_vec(&tree).unwrap());
    }

    #[test]
    fn meta_parser_takes_edited_fixtures(body in mutated_fixture()) {
        ingest_pure(&body);
    }

    /// Envelopes with the right object and shape, holding items that are each well formed or
    /// edited: the strict pass fails and the lenient one runs item by item.
    #[test]
    fn meta_parser_takes_odd_items_in_real_envelopes(
        whatsapp in prop::collection::vec(whatsapp_item(), 0..5),
        messaging in prop::collection::vec(messaging_item(), 0..5),
        contacts in prop::collection::vec(edited(json!({"profile": {"name": "A"}, "wa_id": "16505551234"})), 0..3),
        instagram in any::<bool>(),
    ) {
        let whatsapp = json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"phone_number_id": "106540352242922"},
                "contacts": contacts, "messages": whatsapp
            }}]}]
        });
        ingest_pure(&serde_json::to_vec(&whatsapp).unwrap());
        let object = if instagram { "instagram" } else { "page" };
        let messaging = json!({
            "object": object,
            "entry": [{"id": "106540352242922", "time": 1, "messaging": messaging}]
        });
        ingest_pure(&serde_json::to_vec(&messaging).unwrap());
    }
}

// ------------------------------------------------------------------------------ postbacks

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some(" APPLICATION/JSON; charset=utf-8".to_owned())),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        any::<String>().prop_map(Some),
    ]
}

fn postback_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "click_id", "conversion_id", "payout", "currency", "event", "converted_at", "token",
            "aff_sub", "transaction_id", "sub1", "sale_amount", "amount", "adv_sub",
        ]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn query_from(pairs: &[(String, String)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        query.append_pair(key, value);
    }
    query.finish()
}

fn check_postback(query: Option<&str>, content_type: Option<&str>, body: &[u8]) {
    let Ok((params, _token)) = read_params(query, content_type, body) else {
        return;
    };
    assert!(
        params.iter().all(|(key, _)| key != "token"),
        "the token is never a field"
    );
    for network in ["tune", "everflow", "generic"] {
        let network = Network::parse(network).unwrap();
        if let Ok(postback) = Postback::parse(network, &params, now()) {
            assert!(!postback.click_id().is_some_and(str::is_empty));
            assert!(postback.conversion_key().starts_with(network.as_str()));
            let _ = postback.reported_conversion_id();
        }
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn postback_parser_takes_arbitrary_input(
        query in prop::option::of(any::<String>()),
        content_type in content_type(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        check_postback(query.as_deref(), content_type.as_deref(), &body);
    }

    #[test]
    fn postback_parser_takes_odd_fields(
        query in prop::collection::vec((postback_key(), edgy_string()), 0..8),
        json_body in prop::collection::vec((postback_key(), leaf()), 0..8),
        form_body in prop::collection::vec((postback_key(), edgy_string()), 0..8),
        use_json in any::<bool>(),
    ) {
        let query = query_from(&query);
        if use_json {
            let object: Map<String, Value> = json_body.into_iter().collect();
            let body = serde_json::to_vec(&Value::Object(object)).unwrap();
            check_postback(Some(&query), Some("application/json"), &body);
        } else {
            check_postback(Some(&query), None, query_from(&form_body).as_bytes());
        }
    }
}

// ------------------------------------------------------------------------------ rules

/// Regular-expression-ish text: mostly syntax characters, so that some patterns compile and
/// many do not, some of them huge once compiled.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 ().*+?|^$\\[\\]{}\\\\,:=!<>-]{0,40}",
        1 => edgy_string(),
        1 => Just("(a{1000}){1000}".to_owned()),
        1 => Just("\\p{Greek}+|\\w{100}".to_owned()),
    ]
}

fn rule_json() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        4 => prop::sample::select(vec!["contains", "exact", "prefix", "regex"]).prop_map(Value::from),
        1 => leaf(),
    ];
    let platform = prop_oneof![
        4 => prop::sample::select(vec![
            "tiktok", "google", "youtube", "twitter", "linkedin", "snapchat", "pinterest", "email",
            "sms", "custom",
        ]).prop_map(Value::from),
        1 => leaf(),
    ];
    (
        edgy_string(),
        platform,
        prop::option::of(edgy_string()),
        kind,
        pattern(),
        prop::option::of(any::<bool>()),
        prop::option::of(leaf()),
        prop::option::of(prop_oneof![any::<i64>().prop_map(Value::from), leaf()]),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                name,
                platform,
                source_name,
                kind,
                pattern,
                case_sensitive,
                campaign,
                priority,
                enabled,
            )| {
                let mut rule = json!({
                    "name": name, "platform": platform,
                    "match": {"kind": kind, "pattern": pattern},
                });
                if let Some(source_name) = source_name {
                    rule["source_name"] = source_name.into();
                }
                if let Some(case_sensitive) = case_sensitive {
                    rule["match"]["case_sensitive"] = case_sensitive.into();
                }
                if let Some(campaign) = campaign {
                    rule["campaign"] = campaign;
                }
                if let Some(priority) = priority {
                    rule["priority"] = priority;
                }
                if let Some(enabled) = enabled {
                    rule["enabled"] = enabled.into();
                }
                rule
            },
        )
}

fn compile_and_match(bodies: &[Vec<u8>], texts: &[String]) {
    let instance = InstanceId::parse("106540352242922").unwrap();
    let rules: Vec<_> = bodies
        .iter()
        .filter_map(|body| RuleDraft::from_json(body).ok())
        .map(|draft| draft.into_rule(RuleId::new(), instance.clone(), now(), now()))
        .collect();
    let compiled = CompiledRules::compile(&rules);
    for text in texts {
        let _ = normalize(text, true);
        let _ = normalize(text, false);
        if let Some(rule) = compiled.first_match(text) {
            assert!(rule.settings.enabled, "a disabled rule matched");
            assert!(rules.iter().any(|r| r.id == rule.id));
        }
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn rule_parser_takes_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        compile_and_match(&[body], &["".to_owned(), "hi".to_owned()]);
    }

    #[test]
    fn rule_parser_takes_arbitrary_json(tree in json_tree(prop::sample::select(vec![
        "name", "platform", "source_name", "match", "kind", "pattern", "case_sensitive",
        "campaign", "ad", "priority", "enabled", "id", "created_at",
    ]).prop_map(str::to_owned).boxed())) {
        compile_and_match(&[serde_json::to_vec(&tree).unwrap()], &["a".to_owned()]);
    }
}

proptest! {
    // Compiling regexes is the slow part: fewer cases.
    #![proptest_config(config(256))]

    #[test]
    fn compiled_rules_match_arbitrary_text(
        rules in prop::collection::vec(rule_json(), 1..6),
        texts in prop::collection::vec(prop_oneof![any::<String>(), edgy_string(), pattern()], 1..6),
    ) {
        let bodies: Vec<Vec<u8>> = rules.iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
        compile_and_match(&bodies, &texts);
    }
}

// ------------------------------------------------------------------------------ offers

fn url_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "http://", "https://", "HTTP://", "ftp://", "", "https:", "//",
        ]),
        prop_oneof![
            "[a-z0-9.-]{0,20}",
            Just("[::1]".to_owned()),
            Just("127.0.0.1:8080".to_owned()),
            any::<String>(),
        ],
        prop_oneof!["(/[a-zA-Z0-9%{}_.~-]{0,10}){0,3}", any::<String>()],
        prop::option::of(prop::collection::vec(
            (
                "[a-z_]{1,8}",
                prop_oneof![Just("{click_id}".to_owned()), "[a-zA-Z0-9%{}&=+ ]{0,12}",],
            ),
            0..4,
        )),
        prop::option::of("[a-z{}_]{0,10}"),
    )
        .prop_map(|(scheme, host, path, query, fragment)| {
            let mut url = format!("{scheme}{host}{path}");
            if let Some(pairs) = query {
                url.push('?');
                let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                url.push_str(&joined.join("&"));
            }
            if let Some(fragment) = fragment {
                url.push('#');
                url.push_str(&fragment);
            }
            url
        })
}

fn check_destination(text: &str, click_id: &str) {
    let Ok(destination) = DestinationUrl::parse(text) else {
        return;
    };
    let redirect = destination.for_click(click_id);
    let parsed = url::Url::parse(&redirect)
        .unwrap_or_else(|e| panic!("{text:?} redirects to {redirect:?}, not a URL: {e}"));
    assert!(matches!(parsed.scheme(), "http" | "https"), "{redirect}");
    if !destination
        .as_str()
        .contains(DestinationUrl::CLICK_ID_PLACEHOLDER)
    {
        assert!(
            parsed
                .query_pairs()
                .any(|(k, v)| k == "click_id" && v == click_id),
            "{text:?} → {redirect:?} lost the click id"
        );
    } else {
        assert!(redirect.contains(click_id), "{redirect}");
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn destination_urls_take_arbitrary_text(text in any::<String>(), click_id in "[0-9A-Z]{26}") {
        check_destination(&text, &click_id);
    }

    #[test]
    fn destination_urls_take_url_shaped_text(text in url_text(), click_id in "[0-9A-Z]{26}") {
        check_destination(&text, &click_id);
    }

    #[test]
    fn offer_and_send_bodies_take_arbitrary_json(tree in json_tree(prop::sample::select(vec![
        "offer_id", "name", "destination_url", "click_window_days", "payout", "currency",
        "instance_id", "contact_id", "message_id", "campaign", "creative", "sent_at",
    ]).prop_map(str::to_owned).boxed()),
        url in url_text(),
        payout in prop::option::of(leaf()),
        currency in prop::option::of(leaf()),
    ) {
        let body = serde_json::to_vec(&tree).unwrap();
        let _ = OfferDraft::from_json(&body);
        let _ = SendDraft::many_from_json(&body);
        let mut offer = json!({"name": "n", "destination_url": url});
        if let Some(payout) = payout {
            offer["payout"] = payout;
        }
        if let Some(currency) = currency {
            offer["currency"] = currency;
        }
        if let Ok(draft) = OfferDraft::from_json(&serde_json::to_vec(&offer).unwrap()) {
            check_destination(draft.destination_url.as_str(), "01K0000000000000000000000");
        }
    }
}

/// The web widget's page URL and referrer parser: never a panic; an accepted visit always has a
/// platform of the fixed list, kept parameters are at most 500 bytes without control
/// characters, stored URLs at most 2 KiB whatever their re-encoding, and a ref code found in
/// any text is of the right shape.
fn check_visit(page: &str, referrer: Option<&str>) {
    if let Ok(visit) = shared::web::WebVisit::from_page(page, referrer, now()) {
        assert_visit_shape(&visit);
    }
    let text = format!("{page} [ref:{}]", referrer.unwrap_or(""));
    if let Some(code) = shared::web::ref_code_in(&text) {
        assert_eq!(code.len(), shared::web::REF_CODE_LEN);
    }
    let _ = shared::web::without_ref_code(&text);
}

fn assert_visit_shape(visit: &shared::web::WebVisit) {
    use shared::web::{MAX_PARAM_BYTES, MAX_STORED_URL_BYTES, WebPlatform};
    assert!(WebPlatform::ALL.contains(&visit.platform));
    let (utm, ids) = (&visit.utm, &visit.click_ids);
    let params = [
        &utm.source,
        &utm.medium,
        &utm.campaign,
        &utm.term,
        &utm.content,
        &ids.gclid,
        &ids.fbclid,
        &ids.gbraid,
        &ids.wbraid,
        &ids.ttclid,
        &ids.msclkid,
        &ids.li_fat_id,
    ];
    for value in params.into_iter().flatten() {
        assert!(
            !value.is_empty()
                && value.len() <= MAX_PARAM_BYTES
                && !value.chars().any(char::is_control),
            "{value:?}"
        );
    }
    if params.iter().skip(5).all(|id| id.is_none()) {
        if let Some(source) = &utm.source {
            let named = WebPlatform::from_source(source).unwrap_or(WebPlatform::Other);
            assert_eq!(visit.platform, named, "{source:?}");
        }
    }
    assert!(visit.page_url.len() <= MAX_STORED_URL_BYTES);
    assert!(
        visit
            .referrer
            .as_ref()
            .is_none_or(|r| r.len() <= MAX_STORED_URL_BYTES)
    );
}

/// Whatever a browser sends as its visitor id, the contact it names is a web contact's, apart
/// from every id Meta can send (digits, business-scoped ids).
fn check_visitor_id(visitor_id: &str) {
    if let Ok(contact) = shared::web::web_contact_id(visitor_id) {
        let id = contact.as_str();
        assert_eq!(
            id.strip_prefix(shared::web::WEB_CONTACT_PREFIX),
            Some(visitor_id)
        );
        assert_eq!(
            id.matches(':').count(),
            1,
            "the namespace's colon, which no Meta id holds"
        );
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn visitor_ids_name_only_web_contacts(
        visitor in prop_oneof![any::<String>(), "[0-9]{1,20}", "[A-Z]{2}\\.[A-Za-z0-9]{1,128}", "[A-Za-z0-9_:.-]{1,70}"],
    ) {
        check_visitor_id(&visitor);
    }

    #[test]
    fn web_visits_take_arbitrary_text(page in any::<String>(), referrer in prop::option::of(any::<String>())) {
        check_visit(&page, referrer.as_deref());
    }

    #[test]
    fn web_visits_take_url_shaped_text(
        page in url_text(),
        query in prop::collection::vec(
            (prop::sample::select(vec!["utm_source", "utm_medium", "utm_campaign", "utm_term",
                "utm_content", "gclid", "fbclid", "gbraid", "wbraid", "ttclid", "msclkid",
                "li_fat_id", "x"]), prop_oneof!["[^&#]{0,40}", "(%[0-9A-F]{2}|[ \"é€]){0,300}"]),
            0..8,
        ),
        referrer in prop::option::of(url_text()),
    ) {
        let joined: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let separator = if page.contains('?') { "&" } else { "?" };
        check_visit(&format!("{page}{separator}{}", joined.join("&")), referrer.as_deref());
    }
}
