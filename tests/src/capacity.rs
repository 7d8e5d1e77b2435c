//! What each operation costs on DynamoDB and SQS: every operation of the cost issue run once
//! through the functions' own routers and the matcher's SQS handler, over DynamoDB and SQS
//! clients whose interceptor counts each request by API, asks DynamoDB for the capacity it
//! consumed (`ReturnConsumedCapacity: TOTAL` written into every request that takes it) and notes
//! the items written. `tests/tests/capacity.rs` compares the figures with
//! `infra/capacity/expected.json`; `infra/scripts/capacity.sh` prints and rewrites them.

use crate::{
    ADMIN_KEY, Backend, POSTBACK_TOKEN, PUBLIC_BASE_URL, Stores, admin_get, admin_request, call,
    configure_widget, ctwa_referral, dynamo_stores, emulator_config, fixture, fresh_stores,
    function_routers, ingest_many_contacts, rules_app_with_queue, signed_delivery,
    webhook_app_with_goals, whatsapp_message, widget_post,
};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::matching::QueueWorker;
use shared::queue::JobQueue;
use shared::queue::sqs::SqsQueue;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// The DynamoDB APIs that take `ReturnConsumedCapacity` (the others refuse the field).
const REPORTS_CAPACITY: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// Calls and units of one API within one operation: as DynamoDB Local reports them, and as
/// DynamoDB's documented rules price the items read and written (`documented_*`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApiCost {
    pub calls: u32,
    pub read_units: f64,
    pub write_units: f64,
    pub documented_read_units: f64,
    pub documented_write_units: f64,
}

/// What one run of an operation cost.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub dynamodb: BTreeMap<String, ApiCost>,
    pub sqs: BTreeMap<String, u32>,
    /// Every item write DynamoDB accepted.
    writes: Vec<Written>,
    /// The index entries of the tables whose indexes do not project every attribute, as
    /// they stood before the operation: table → primary key → entry.
    entries_before: BTreeMap<String, HashMap<String, Item>>,
}

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
struct Written {
    api: String,
    table: String,
    /// Transactional writes cost twice a standard one.
    transactional: bool,
    item: Write,
}

#[derive(Debug, Clone)]
enum Write {
    /// The item put.
    Put(Value),
    /// The key of the item updated.
    Update(Value),
}

impl Tally {
    fn record(&mut self, service: &str, api: &str, request: Option<&Value>, response: &Value) {
        if service != "DynamoDB" {
            *self.sqs.entry(api.to_owned()).or_default() += 1;
            return;
        }
        let cost = self.dynamodb.entry(api.to_owned()).or_default();
        cost.calls += 1;
        let reads = matches!(
            api,
            "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
        );
        let consumed = match &response["ConsumedCapacity"] {
            Value::Array(each) => each.clone(),
            Value::Null => Vec::new(),
            one => vec![one.clone()],
        };
        for table in consumed {
            let total = table["CapacityUnits"].as_f64().unwrap_or(0.0);
            let (read, write) = match (
                table["ReadCapacityUnits"].as_f64(),
                table["WriteCapacityUnits"].as_f64(),
            ) {
                (None, None) if reads => (total, 0.0),
                (None, None) => (0.0, total),
                (read, write) => (read.unwrap_or(0.0), write.unwrap_or(0.0)),
            };
            cost.read_units += read;
            cost.write_units += write;
        }
        let Some(request) = request else {
            return;
        };
        if reads {
            cost.documented_read_units += documented_read(request, response);
        }
        self.writes
            .extend(writes_of(request).into_iter().map(|(table, item)| Written {
                api: api.to_owned(),
                table,
                transactional: api == "TransactWriteItems",
                item,
            }));
    }

    pub fn dynamodb_calls(&self) -> u32 {
        self.dynamodb.values().map(|cost| cost.calls).sum()
    }

    fn total(&self, units: impl Fn(&ApiCost) -> f64) -> f64 {
        // Not `sum`: an empty f64 sum is -0.
        self.dynamodb
            .values()
            .fold(0.0, |total, cost| total + units(cost))
    }

    pub fn read_units(&self) -> f64 {
        self.total(|cost| cost.read_units)
    }

    pub fn write_units(&self) -> f64 {
        self.total(|cost| cost.write_units)
    }

    pub fn documented_read_units(&self) -> f64 {
        self.total(|cost| cost.documented_read_units)
    }

    pub fn documented_write_units(&self) -> f64 {
        self.total(|cost| cost.documented_write_units)
    }

    pub fn sqs_calls(&self) -> u32 {
        self.sqs.values().sum()
    }

    /// What must not change without `expected.json` changing with it: calls and units (the
    /// bytes are left out: they move with the clock's digits and ids, not with the code; the
    /// documented units round them up to whole kilobytes).
    pub fn counts(&self) -> Value {
        json!({
            "dynamodb": self.dynamodb.iter().map(|(api, cost)| (api.clone(), json!({
                "calls": cost.calls, "read_units": cost.read_units, "write_units": cost.write_units,
                "documented_read_units": cost.documented_read_units,
                "documented_write_units": cost.documented_write_units,
            }))).collect::<serde_json::Map<_, _>>(),
            "sqs": self.sqs,
        })
    }
}

/// The item writes of a DynamoDB request body, by table.
fn writes_of(request: &Value) -> Vec<(String, Write)> {
    let table = |op: &Value| op["TableName"].as_str().unwrap_or_default().to_owned();
    let mut writes = Vec::new();
    if request.get("Item").is_some() {
        writes.push((table(request), Write::Put(request["Item"].clone())));
    } else if request.get("UpdateExpression").is_some() {
        writes.push((table(request), Write::Update(request["Key"].clone())));
    }
    for item in request["TransactItems"].as_array().into_iter().flatten() {
        if let Some(put) = item.get("Put") {
            writes.push((table(put), Write::Put(put["Item"].clone())));
        } else if let Some(update) = item.get("Update") {
            writes.push((table(update), Write::Update(update["Key"].clone())));
        }
    }
    for (name, requests) in request["RequestItems"].as_object().into_iter().flatten() {
        for put in requests.as_array().into_iter().flatten() {
            if let Some(item) = put.get("PutRequest") {
                writes.push((name.clone(), Write::Put(item["Item"].clone())));
            }
        }
    }
    writes
}

/// The read units DynamoDB's documented rules charge for a read's answer: the bytes of the
/// items returned, rounded up to 4 KB once per request (at least one unit, also when nothing
/// was found), halved for an eventually consistent read. Items read and then filtered, or
/// attributes left out by a projection, would cost more than this sees; no read measured here
/// crosses 4 KB by either.
fn documented_read(request: &Value, response: &Value) -> f64 {
    if let Value::Object(tables) = &request["RequestItems"] {
        return tables
            .iter()
            .map(|(table, keys)| batch_read(keys, &response["Responses"][table]))
            .sum();
    }
    let items = match (&response["Item"], &response["Items"]) {
        (Value::Object(_), _) => vec![response["Item"].clone()],
        (_, Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let bytes: usize = items.iter().map(|each| item_size(&item(each))).sum();
    let units = bytes.div_ceil(4096).max(1) as f64;
    if request["ConsistentRead"].as_bool() == Some(true) {
        units
    } else {
        units / 2.0
    }
}

/// One table's part of a `BatchGetItem`: each key priced as the `GetItem` DynamoDB runs for
/// it (its item rounded up to 4 KB, at least one unit when nothing was found), halved for an
/// eventually consistent read.
fn batch_read(keys: &Value, found: &Value) -> f64 {
    let asked = keys["Keys"].as_array().map_or(0, Vec::len);
    let items = found.as_array().cloned().unwrap_or_default();
    let units: usize = items
        .iter()
        .map(|each| item_size(&item(each)).div_ceil(4096).max(1))
        .sum::<usize>()
        + asked.saturating_sub(items.len());
    if keys["ConsistentRead"].as_bool() == Some(true) {
        units as f64
    } else {
        units as f64 / 2.0
    }
}

/// The tally the counting clients add to; one operation at a time is measured.
#[derive(Clone, Default, Debug)]
pub struct Meter(Arc<Mutex<Tally>>);

impl Meter {
    /// What was counted since the last take.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// A DynamoDB client over `sdk` whose every request this meter counts.
    pub fn dynamo_client(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(Counting(self.clone()))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

/// The request body sent, kept from signing to the response (the request itself is gone then).
#[derive(Debug, Clone)]
struct SentBody(Value);

impl Storable for SentBody {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug)]
struct Counting(Meter);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        if metadata.service() != "DynamoDB" || !REPORTS_CAPACITY.contains(&metadata.name()) {
            return Ok(());
        }
        let request = context.request_mut();
        let Some(bytes) = request.body().bytes() else {
            return Ok(());
        };
        let mut body: Value = serde_json::from_slice(bytes)?;
        body["ReturnConsumedCapacity"] = json!("TOTAL");
        let bytes = serde_json::to_vec(&body)?;
        // The serializer set the length of the body it wrote; this one is longer.
        request
            .headers_mut()
            .insert("content-length", bytes.len().to_string());
        *request.body_mut() = SdkBody::from(bytes);
        cfg.interceptor_state().store_put(SentBody(body));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let response = context.response();
        // An emulator that failed under load is retried by the SDK: that attempt is the
        // machine's, not the code path's, and would make the counts flaky.
        if response.status().is_server_error() {
            return Ok(());
        }
        let body = response
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        // A refused write (a failed condition, a cancelled transaction) wrote nothing.
        let sent = cfg
            .load::<SentBody>()
            .filter(|_| response.status().is_success());
        self.0.0.lock().unwrap().record(
            metadata.service(),
            metadata.name(),
            sent.map(|sent| &sent.0),
            &body,
        );
        Ok(())
    }
}

/// DynamoDB's size of an attribute value (its documented rules: strings and binaries their
/// bytes, a number 1 byte per two significant digits plus 1, lists and maps 3 bytes plus 1 per
/// element, booleans and nulls 1).
fn value_size(value: &AttributeValue) -> usize {
    let number = |digits: &str| {
        let significant = digits
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>();
        significant.trim_matches('0').len().div_ceil(2) + 1
    };
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(digits) => number(digits),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|n| number(n)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::M(fields) => 3 + item_size(fields) + fields.len(),
        _ => 1,
    }
}

fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// An attribute value as DynamoDB's JSON writes it.
fn attribute(json: &Value) -> AttributeValue {
    let (kind, value) = json
        .as_object()
        .and_then(|object| object.iter().next())
        .expect("an attribute value");
    let texts = || {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let blob = |v: &Value| {
        aws_sdk_dynamodb::primitives::Blob::new(
            aws_smithy_types::base64::decode(v.as_str().unwrap()).expect("base64"),
        )
    };
    match kind.as_str() {
        "S" => AttributeValue::S(value.as_str().unwrap().to_owned()),
        "N" => AttributeValue::N(value.as_str().unwrap().to_owned()),
        "B" => AttributeValue::B(blob(value)),
        "BOOL" => AttributeValue::Bool(value.as_bool().unwrap()),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(texts()),
        "NS" => AttributeValue::Ns(texts()),
        "BS" => AttributeValue::Bs(value.as_array().unwrap().iter().map(blob).collect()),
        "L" => AttributeValue::L(value.as_array().unwrap().iter().map(attribute).collect()),
        "M" => AttributeValue::M(item(value)),
        other => panic!("unknown attribute type {other}"),
    }
}

fn item(json: &Value) -> HashMap<String, AttributeValue> {
    json.as_object()
        .expect("an item")
        .iter()
        .map(|(name, value)| (name.clone(), attribute(value)))
        .collect()
}

/// The operations measured, in the order the tables show them.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    NewContactMetaAd,
    NewContactPrefilled,
    MatchJob,
    LaterMessage,
    DuplicateDelivery,
    StatusOnlyDelivery,
    WidgetEvent,
    Click,
    PostbackAttributed,
    PostbackDuplicate,
    PostbackUnknownClick,
    PostbackContactNamed,
    PostbackViewThrough,
    Import500,
    BackfillPage,
    StatsRead,
    ContactsPage,
    RevenueReport,
    AdsReport,
}

impl Operation {
    pub const ALL: [Operation; 19] = [
        Operation::NewContactMetaAd,
        Operation::NewContactPrefilled,
        Operation::MatchJob,
        Operation::LaterMessage,
        Operation::DuplicateDelivery,
        Operation::StatusOnlyDelivery,
        Operation::WidgetEvent,
        Operation::Click,
        Operation::PostbackAttributed,
        Operation::PostbackDuplicate,
        Operation::PostbackUnknownClick,
        Operation::PostbackContactNamed,
        Operation::PostbackViewThrough,
        Operation::Import500,
        Operation::BackfillPage,
        Operation::StatsRead,
        Operation::ContactsPage,
        Operation::RevenueReport,
        Operation::AdsReport,
    ];

    /// Its name in the tables (and `infra/capacity/cost.py`'s month) and the function that
    /// serves it.
    pub fn name_and_function(self) -> (&'static str, &'static str) {
        match self {
            Operation::NewContactMetaAd => ("new contact, Meta ad referral", "webhook"),
            Operation::NewContactPrefilled => ("new contact, pre-filled text", "webhook"),
            Operation::MatchJob => ("its match job", "matcher"),
            Operation::LaterMessage => ("later message of a known contact", "webhook"),
            Operation::DuplicateDelivery => ("duplicate delivery", "webhook"),
            Operation::StatusOnlyDelivery => ("status-only delivery", "webhook"),
            Operation::WidgetEvent => ("widget event, new visitor", "widget"),
            Operation::Click => ("click", "clicks"),
            Operation::PostbackAttributed => ("postback, attributed", "postback"),
            Operation::PostbackDuplicate => ("postback, duplicate", "postback"),
            Operation::PostbackUnknownClick => ("postback, unknown click", "postback"),
            Operation::PostbackContactNamed => ("postback naming the contact", "postback"),
            Operation::PostbackViewThrough => ("postback, view-through", "postback"),
            Operation::Import500 => ("conversion import of 500 rows", "revenue"),
            Operation::BackfillPage => ("backfill page of 500", "matcher"),
            Operation::StatsRead => ("stats read (7 days)", "rules"),
            Operation::ContactsPage => ("contacts page (50)", "contacts"),
            Operation::RevenueReport => ("revenue report (by campaign)", "revenue"),
            Operation::AdsReport => ("ads report (by campaign, 30 days, every instance)", "spend"),
        }
    }
}

const INSTANCE: &str = "106540352242922";
const WEB_INSTANCE: &str = "200000000000001";
/// The contact the measured send went to, whose clicks the postbacks name.
const SENT_CONTACT: &str = "16505551234";
/// A contact sent the viewed offer, never clicking it.
const VIEWED_CONTACT: &str = "16505559999";
const LISTED_INSTANCE: &str = "200000000000002";
const SHOP: &str = "https://shop.example";
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64)";
const VISITOR: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)),
    40_000,
);

/// What one Lambda container holds: the functions' routers and the matcher over one set of
/// stores, sending to one queue.
pub struct Container {
    webhook: Router,
    rules: Router,
    routers: Vec<(&'static str, Router)>,
    matcher: QueueWorker,
}

impl Container {
    fn new(stores: &Stores, queue: Arc<dyn JobQueue>) -> Self {
        let matcher = QueueWorker::new(
            stores.contacts.clone(),
            stores.rules.clone(),
            stores.jobs.clone(),
        )
        .with_ref_codes(stores.widgets.clone())
        .with_revenue(stores.revenue.clone());
        matcher.attach_queue(queue.clone());
        Self {
            webhook: webhook_app_with_goals(
                stores.contacts.clone(),
                queue.clone(),
                stores.goals.clone(),
            ),
            rules: rules_app_with_queue(stores, queue),
            routers: function_routers(stores),
            matcher,
        }
    }

    fn router(&self, function: &str) -> &Router {
        &self
            .routers
            .iter()
            .find(|(name, _)| *name == function)
            .expect("a function's router")
            .1
    }

    async fn deliver(&self, body: &[u8]) {
        let (status, report) = call(&self.webhook, signed_delivery(body)).await;
        assert_eq!(status, StatusCode::OK, "{report}");
    }

    /// Follows `code` as a browser; answers the click id.
    async fn click(&self, code: &str) -> String {
        let request = Request::get(format!("/c/{code}"))
            .header("user-agent", BROWSER)
            .extension(ConnectInfo(VISITOR))
            .body(Body::empty())
            .unwrap();
        let response = self
            .router("clicks")
            .clone()
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()["location"].to_str().unwrap();
        location.rsplit_once("aff=").unwrap().1.to_owned()
    }

    async fn postback(&self, click_id: &str, transaction: &str) -> Value {
        let request = Request::get(format!(
            "/postbacks/tune?token={POSTBACK_TOKEN}&aff_sub={click_id}&transaction_id={transaction}&payout=12.50"
        ))
        .body(Body::empty())
        .unwrap();
        let (status, body) = call(self.router("postback"), request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// A postback naming the contact and offer instead of a click.
    async fn contact_postback(&self, contact: &str, offer: &str, transaction: &str) -> Value {
        let request = Request::get(format!(
            "/postbacks/generic?token={POSTBACK_TOKEN}&instance_id={INSTANCE}&contact_id={contact}&offer_id={offer}&conversion_id={transaction}&payout=12.50"
        ))
        .body(Body::empty())
        .unwrap();
        let (status, body) = call(self.router("postback"), request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Imports `csv` as TUNE's; answers the totals line.
    async fn import(&self, csv: String) -> Value {
        let request = Request::post("/conversions/import?network=tune")
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .header("content-type", "text/csv")
            .body(Body::from(csv))
            .unwrap();
        let response = self
            .router("revenue")
            .clone()
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    }

    async fn read(&self, function: &str, path: &str) {
        let (status, body) = call(self.router(function), admin_get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}

/// The measured operations' world: DynamoDB Local tables and a moto queue, a container that
/// prepares each operation's state unmetered, and counting clients for the measured ones.
pub struct Rig {
    meter: Meter,
    dynamo_config: aws_sdk_dynamodb::Config,
    sqs_config: aws_sdk_sqs::Config,
    dynamo: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    prefix: String,
    setup_stores: Stores,
    setup: Container,
    widget_key: String,
    code: String,
    now: i64,
    /// Each table's keys and global secondary indexes.
    shapes: Mutex<HashMap<String, TableShape>>,
    _guard: crate::StoreGuard,
}

/// One operation's figures: on a warm container, and the first time in a new one.
pub struct Measured {
    pub name: &'static str,
    pub function: &'static str,
    pub steady: Tally,
    pub first: Tally,
    /// Per table: items written, their largest and total size in bytes (steady state).
    pub item_bytes: BTreeMap<String, (usize, usize, usize)>,
}

impl Rig {
    /// `None` when the emulators are not configured (see `fresh_stores`).
    pub async fn new() -> Option<Self> {
        let (setup_stores, guard) = fresh_stores(Backend::Dynamo).await?;
        let meter = Meter::default();
        let dynamo_sdk = emulator_config("DYNAMODB_ENDPOINT").await?;
        let sqs_sdk = emulator_config("SQS_ENDPOINT").await?;
        let dynamo_config = aws_sdk_dynamodb::config::Builder::from(&dynamo_sdk)
            .interceptor(Counting(meter.clone()))
            .build();
        let sqs_config = aws_sdk_sqs::config::Builder::from(&sqs_sdk)
            .interceptor(Counting(meter.clone()))
            .build();
        let dynamo = aws_sdk_dynamodb::Client::new(&dynamo_sdk);
        let sqs = aws_sdk_sqs::Client::new(&sqs_sdk);
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("capacity-{}", ulid::Ulid::new()).to_lowercase())
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let setup = Container::new(
            &setup_stores,
            Arc::new(SqsQueue::new(sqs.clone(), queue_url.clone())),
        );
        let now = chrono::Utc::now().timestamp();
        let prefix = guard.dynamo_prefix.clone().expect("DynamoDB tables");
        let mut rig = Self {
            meter,
            dynamo_config,
            sqs_config,
            dynamo,
            sqs,
            queue_url,
            prefix,
            setup_stores,
            setup,
            widget_key: String::new(),
            code: String::new(),
            now,
            shapes: Mutex::default(),
            _guard: guard,
        };
        rig.prepare().await;
        Some(rig)
    }

    /// The state every operation starts from: a rule, a widget, an offer and a send, a listing.
    async fn prepare(&mut self) {
        let rule = json!({"name": "TikTok", "platform": "tiktok", "match": {"kind": "contains", "pattern": "tiktok ad"}});
        self.admin(
            "rules",
            "POST",
            &format!("/instances/{INSTANCE}/rules"),
            rule,
        )
        .await;
        self.widget_key = configure_widget(&self.setup.rules, WEB_INSTANCE, &[SHOP]).await;
        let offer = json!({"offer_id": "shoes", "name": "Shoes", "click_window_days": 30,
            "destination_url": "https://shop.example/p?aff={click_id}"});
        self.admin("revenue", "POST", "/offers", offer).await;
        let send = json!({"instance_id": INSTANCE, "contact_id": SENT_CONTACT,
            "message_id": "wamid.send", "campaign": "spring", "creative": "tpl-a", "offer_id": "shoes"});
        let sent = self.admin("revenue", "POST", "/sends", send).await;
        self.code = sent["tracked_url"]
            .as_str()
            .unwrap()
            .strip_prefix(&format!("{PUBLIC_BASE_URL}/c/"))
            .unwrap()
            .to_owned();
        let clicked = self.setup.click(&self.code).await;
        self.setup.postback(&clicked, "setup").await;
        // A viewed offer sent to a contact who never clicks it, for view-through credits.
        let offer = json!({"offer_id": "viewed", "name": "Viewed", "click_window_days": 30,
            "view_window_days": 7, "destination_url": "https://shop.example/v?aff={click_id}"});
        self.admin("revenue", "POST", "/offers", offer).await;
        let send = json!({"instance_id": INSTANCE, "contact_id": VIEWED_CONTACT,
            "message_id": "wamid.viewed", "campaign": "spring", "creative": "tpl-v", "offer_id": "viewed"});
        self.admin("revenue", "POST", "/sends", send).await;
        ingest_many_contacts(&self.setup_stores, LISTED_INSTANCE, self.now - 86_400, 60).await;
    }

    async fn admin(&self, function: &str, method: &str, path: &str, body: Value) -> Value {
        let router = match function {
            "rules" => &self.setup.rules,
            other => self.setup.router(other),
        };
        let (status, answer) = call(router, admin_request(method, path, Some(body))).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// A new container: new stores over the same tables, on the counting clients.
    fn container(&self) -> Container {
        let dynamo = aws_sdk_dynamodb::Client::from_conf(self.dynamo_config.clone());
        let sqs = aws_sdk_sqs::Client::from_conf(self.sqs_config.clone());
        Container::new(
            &dynamo_stores(&dynamo, &self.prefix),
            Arc::new(SqsQueue::new(sqs, self.queue_url.clone())),
        )
    }

    /// Every operation, first in a new container, then again in that warm container.
    pub async fn measure_all(&self) -> Vec<Measured> {
        let mut measured = Vec::new();
        for operation in Operation::ALL {
            let (name, function) = operation.name_and_function();
            let container = self.container();
            let mut first = self.run(operation, &container, 0).await;
            self.settle(&mut first).await;
            let mut steady = self.run(operation, &container, 1).await;
            let item_bytes = self.settle(&mut steady).await;
            measured.push(Measured {
                name,
                function,
                steady,
                first,
                item_bytes,
            });
        }
        measured
    }

    /// Runs `operation` the `n`th time: its state prepared unmetered, then itself metered; the
    /// queue emptied after it.
    async fn run(&self, operation: Operation, container: &Container, n: i64) -> Tally {
        let at = self.now - 600 + n;
        let contact = |base: i64| format!("{}", base + n);
        let ad = |wa_id: &str, message: &str| {
            whatsapp_message(
                INSTANCE,
                wa_id,
                message,
                at,
                "hello",
                Some(ctwa_referral("ad-1")),
            )
        };
        let prefilled = |wa_id: &str| {
            whatsapp_message(
                INSTANCE,
                wa_id,
                &format!("wamid.p{wa_id}"),
                at,
                "Hi, I saw your TikTok ad!",
                None,
            )
        };
        let tally = match operation {
            Operation::NewContactMetaAd => {
                let wa_id = contact(15_550_100_000);
                self.metered(container.deliver(&ad(&wa_id, &format!("wamid.a{wa_id}"))))
                    .await
            }
            Operation::NewContactPrefilled => {
                self.metered(container.deliver(&prefilled(&contact(15_550_200_000))))
                    .await
            }
            Operation::MatchJob => {
                self.setup
                    .deliver(&prefilled(&contact(15_550_300_000)))
                    .await;
                let event = self.received().await;
                self.metered(async {
                    let answer = matcher::handle_sqs_event(&container.matcher, event).await;
                    assert!(answer.batch_item_failures.is_empty());
                })
                .await
            }
            Operation::LaterMessage => {
                let wa_id = contact(15_550_400_000);
                self.setup
                    .deliver(&ad(&wa_id, &format!("wamid.k{wa_id}")))
                    .await;
                let later = whatsapp_message(
                    INSTANCE,
                    &wa_id,
                    &format!("wamid.l{wa_id}"),
                    at + 60,
                    "thanks",
                    None,
                );
                self.metered(container.deliver(&later)).await
            }
            Operation::DuplicateDelivery => {
                let wa_id = contact(15_550_500_000);
                let body = ad(&wa_id, &format!("wamid.d{wa_id}"));
                self.setup.deliver(&body).await;
                self.metered(container.deliver(&body)).await
            }
            Operation::StatusOnlyDelivery => {
                self.metered(container.deliver(&fixture("whatsapp_statuses.json")))
                    .await
            }
            Operation::WidgetEvent => {
                let visit = json!({"instance_id": WEB_INSTANCE, "visitor_id": format!("visitor-{n}"),
                    "page_url": "https://shop.example/?utm_source=google&gclid=abc"});
                self.metered(async {
                    let (status, _, body) = widget_post(
                        container.router("widget"),
                        "/webhooks/widget",
                        Some(SHOP),
                        &self.widget_key,
                        visit,
                    )
                    .await;
                    assert_eq!(status, StatusCode::OK, "{body}");
                })
                .await
            }
            Operation::Click => {
                self.metered(async {
                    container.click(&self.code).await;
                })
                .await
            }
            Operation::PostbackAttributed => {
                let click = self.setup.click(&self.code).await;
                self.metered(async {
                    let answer = container.postback(&click, &format!("a{n}")).await;
                    assert_eq!(answer["status"], "attributed");
                })
                .await
            }
            Operation::PostbackDuplicate => {
                let click = self.setup.click(&self.code).await;
                self.setup.postback(&click, &format!("d{n}")).await;
                self.metered(async {
                    let answer = container.postback(&click, &format!("d{n}")).await;
                    assert_eq!(answer["status"], "duplicate");
                })
                .await
            }
            Operation::PostbackUnknownClick => {
                let unknown = ulid::Ulid::new().to_string();
                self.metered(async {
                    let answer = container.postback(&unknown, &format!("u{n}")).await;
                    assert_eq!(answer["status"], "unknown_click");
                })
                .await
            }
            // The contact's clicks on the offer in the window (those of the operations
            // before), the conversion and its report rows.
            Operation::PostbackContactNamed => {
                self.metered(async {
                    let answer = container
                        .contact_postback(SENT_CONTACT, "shoes", &format!("n{n}"))
                        .await;
                    assert_eq!(answer["attribution"], "click_through", "{answer}");
                })
                .await
            }
            // No click in the window: the offer, the click Query, the sends Query, the write.
            Operation::PostbackViewThrough => {
                self.metered(async {
                    let answer = container
                        .contact_postback(VIEWED_CONTACT, "viewed", &format!("v{n}"))
                        .await;
                    assert_eq!(answer["attribution"], "view_through", "{answer}");
                })
                .await
            }
            // 500 rows of one click, each recorded as its postback.
            Operation::Import500 => {
                let click = self.setup.click(&self.code).await;
                let mut csv = String::from("aff_sub,transaction_id,payout\n");
                for row in 0..500 {
                    csv.push_str(&format!("{click},i{n}-{row},1.25\n"));
                }
                self.metered(async {
                    let totals = container.import(csv).await;
                    assert_eq!(totals["totals"]["attributed"], 500, "{totals}");
                })
                .await
            }
            Operation::BackfillPage => {
                let event = self.backfill_page(n).await;
                self.metered(async {
                    let answer = matcher::handle_sqs_event(&container.matcher, event).await;
                    assert!(answer.batch_item_failures.is_empty());
                })
                .await
            }
            Operation::StatsRead => {
                self.metered(
                    container.read("rules", &format!("/instances/{INSTANCE}/stats?days=7")),
                )
                .await
            }
            Operation::ContactsPage => {
                self.metered(container.read(
                    "contacts",
                    &format!("/instances/{LISTED_INSTANCE}/contacts"),
                ))
                .await
            }
            Operation::RevenueReport => {
                self.metered(container.read("revenue", "/reports/revenue?group_by=campaign"))
                    .await
            }
            // The last 30 days' spend (a Query a day), the registry, each instance's counters,
            // the revenue counters, and the names of the Meta ads counted.
            Operation::AdsReport => {
                self.metered(container.read("spend", "/reports/ads?group_by=campaign"))
                    .await
            }
        };
        self.drain().await;
        tally
    }

    async fn metered(&self, operation: impl std::future::Future<Output = ()>) -> Tally {
        let entries_before = self.partial_index_entries().await;
        self.meter.take();
        operation.await;
        let mut tally = self.meter.take();
        tally.entries_before = entries_before;
        tally
    }

    /// Every entry of each index that projects less than the whole item (unmetered: a scan
    /// of those tables' keys and projected attributes), so that a write is priced by what it
    /// changed in the index.
    async fn partial_index_entries(&self) -> BTreeMap<String, HashMap<String, Item>> {
        let mut entries = BTreeMap::new();
        // Other runs' tables share the emulator: the list comes in pages of 100.
        let (mut tables, mut after) = (Vec::new(), None);
        loop {
            let page = self
                .dynamo
                .list_tables()
                .set_exclusive_start_table_name(after.take())
                .send()
                .await
                .unwrap();
            tables.extend(page.table_names().iter().cloned());
            after = page.last_evaluated_table_name().map(str::to_owned);
            if after.is_none() {
                break;
            }
        }
        for table in &tables {
            if !table.starts_with(&format!("{}-", self.prefix)) {
                continue;
            }
            let shape = self.shape(table).await;
            if shape.indexes.iter().all(|index| index.projected.is_none()) {
                continue;
            }
            let mut found = HashMap::new();
            let mut start = None;
            loop {
                let page = self
                    .dynamo
                    .scan()
                    .table_name(table)
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .unwrap();
                for item in page.items() {
                    found.insert(shape.primary_key(item), item.clone());
                }
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
            entries.insert(table.to_owned(), found);
        }
        entries
    }

    /// A backfill of 500 contacts without an acquisition (and one with) on an instance of its
    /// own, started unmetered: answers its first page's SQS event.
    async fn backfill_page(&self, n: i64) -> SqsEvent {
        let instance = format!("30000000000000{n}");
        // All on yesterday (UTC), 01:00 to 09:20: one counters item whatever the hour the check
        // runs at (spread across midnight, a page writes two and its units move).
        let yesterday = self.now - self.now.rem_euclid(86_400) - 86_400;
        ingest_many_contacts(&self.setup_stores, &instance, yesterday + 3_600, 501).await;
        let rule = json!({"name": "Hi", "platform": "google", "match": {"kind": "contains", "pattern": "hi"}});
        self.admin(
            "rules",
            "POST",
            &format!("/instances/{instance}/rules"),
            rule,
        )
        .await;
        let job = json!({"days": 7, "dry_run": false});
        self.admin(
            "rules",
            "POST",
            &format!("/instances/{instance}/backfill"),
            job,
        )
        .await;
        self.received().await
    }

    /// The one message on the queue, as Lambda's event source hands it to the matcher (its
    /// polling is not the function's: see the README's cost notes).
    async fn received(&self) -> SqsEvent {
        let messages = self.receive().await;
        assert_eq!(messages.len(), 1, "one job queued");
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|message| {
                let mut record = SqsMessage::default();
                record.message_id = message.message_id;
                record.body = message.body;
                record.receipt_handle = message.receipt_handle;
                record
            })
            .collect();
        event
    }

    async fn receive(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let messages = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        for message in &messages {
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(message.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
        messages
    }

    async fn drain(&self) {
        while !self.receive().await.is_empty() {}
    }

    /// Prices the tally's writes by DynamoDB's documented rules, from the items as they stand
    /// now: 1 unit per KB of item (2 in a transaction), rounded up per item, and for each
    /// global secondary index what the write did to it ("Global secondary indexes: writes"): an
    /// index projecting every attribute is written the item's kilobytes whenever an item in it
    /// is written; one projecting less is written only when the item enters or leaves it (1
    /// per KB of its entry), moves in it (2) or changes a projected attribute (1), judged
    /// against the entries before the operation. An update's item before it, which may be
    /// the larger, is not seen. Answers per table: the items written, their largest and their
    /// total size in bytes.
    async fn settle(&self, tally: &mut Tally) -> BTreeMap<String, (usize, usize, usize)> {
        let mut sizes: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        let mut entries_before = std::mem::take(&mut tally.entries_before);
        for written in std::mem::take(&mut tally.writes) {
            let stored = match &written.item {
                Write::Put(json) => item(json),
                Write::Update(key) => self
                    .dynamo
                    .get_item()
                    .table_name(&written.table)
                    .set_key(Some(item(key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap()
                    .item
                    .unwrap_or_default(),
            };
            let size = item_size(&stored);
            let kilobytes = size.div_ceil(1024).max(1) as f64;
            let shape = self.shape(&written.table).await;
            let before = entries_before
                .get_mut(&written.table)
                .map(|entries| entries.insert(shape.primary_key(&stored), stored.clone()));
            let indexed: f64 = shape
                .indexes
                .iter()
                .map(|index| match &index.projected {
                    None if index.holds(&stored) => kilobytes,
                    None => 0.0,
                    Some(_) => {
                        let before = before.as_ref().and_then(|before| before.as_ref());
                        let entry = |item: Option<&Item>| {
                            item.filter(|item| index.holds(item))
                                .map(|item| shape.entry(index, item))
                        };
                        let kb = |entry: &Item| item_size(entry).div_ceil(1024).max(1) as f64;
                        match (entry(before), entry(Some(&stored))) {
                            (None, None) => 0.0,
                            (Some(one), None) | (None, Some(one)) => kb(&one),
                            (Some(old), Some(new)) if !index.same_keys(&old, &new) => {
                                kb(&old) + kb(&new)
                            }
                            (Some(old), Some(new)) if old != new => kb(&new),
                            _ => 0.0,
                        }
                    }
                })
                .sum();
            let factor = if written.transactional { 2.0 } else { 1.0 };
            tally
                .dynamodb
                .get_mut(&written.api)
                .expect("a write's API was counted")
                .documented_write_units += kilobytes * factor + indexed;
            let name = written
                .table
                .strip_prefix(&format!("{}-", self.prefix))
                .unwrap_or(&written.table);
            let entry = sizes.entry(name.to_owned()).or_default();
            *entry = (entry.0 + 1, entry.1.max(size), entry.2 + size);
        }
        sizes
    }

    /// The keys and global secondary indexes of `table`.
    async fn shape(&self, table: &str) -> TableShape {
        if let Some(known) = self.shapes.lock().unwrap().get(table) {
            return known.clone();
        }
        let described = self
            .dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let names = |keys: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
            keys.iter()
                .map(|key| key.attribute_name().to_owned())
                .collect::<Vec<_>>()
        };
        let shape = TableShape {
            keys: names(described.key_schema()),
            indexes: described
                .global_secondary_indexes()
                .iter()
                .map(|index| {
                    let projection = index.projection();
                    let all = projection.and_then(|p| p.projection_type())
                        == Some(&aws_sdk_dynamodb::types::ProjectionType::All);
                    IndexShape {
                        keys: names(index.key_schema()),
                        projected: (!all).then(|| {
                            projection
                                .map(|p| p.non_key_attributes().to_vec())
                                .unwrap_or_default()
                        }),
                    }
                })
                .collect(),
        };
        self.shapes
            .lock()
            .unwrap()
            .insert(table.to_owned(), shape.clone());
        shape
    }
}

/// A table's key attributes and its global secondary indexes.
#[derive(Debug, Clone)]
struct TableShape {
    keys: Vec<String>,
    indexes: Vec<IndexShape>,
}

/// A global secondary index: its key attributes, and the other attributes it projects
/// (`None`: every attribute).
#[derive(Debug, Clone)]
struct IndexShape {
    keys: Vec<String>,
    projected: Option<Vec<String>>,
}

impl TableShape {
    /// The item's primary key, as text.
    fn primary_key(&self, item: &Item) -> String {
        format!(
            "{:?}",
            self.keys
                .iter()
                .map(|key| item.get(key))
                .collect::<Vec<_>>()
        )
    }

    /// What `index` holds of `item`: the table's keys, the index's keys, and the attributes
    /// it projects.
    fn entry(&self, index: &IndexShape, item: &Item) -> Item {
        let projected = index.projected.iter().flatten();
        self.keys
            .iter()
            .chain(&index.keys)
            .chain(projected)
            .filter_map(|name| item.get(name).map(|value| (name.clone(), value.clone())))
            .collect()
    }
}

impl IndexShape {
    /// Whether `item` is in the index: it has every key attribute of it.
    fn holds(&self, item: &Item) -> bool {
        self.keys.iter().all(|key| item.contains_key(key))
    }

    fn same_keys(&self, a: &Item, b: &Item) -> bool {
        self.keys.iter().all(|key| a.get(key) == b.get(key))
    }
}

/// The figures as `infra/capacity/expected.json` holds them.
pub fn to_json(measured: &[Measured]) -> Value {
    let operations = measured
        .iter()
        .map(|m| {
            json!({
                "operation": m.name,
                "function": m.function,
                "steady": m.steady.counts(),
                "first_in_container": m.first.counts(),
                "items_written": m.item_bytes.iter().map(|(table, (items, max, total))| (table.clone(), json!({
                    "items": items, "max_bytes": max, "total_bytes": total,
                }))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect::<Vec<_>>();
    json!({ "operations": operations })
}

/// Calls, units and SQS calls of every operation, without the item sizes: what is asserted.
pub fn counts_only(figures: &Value) -> Value {
    let mut figures = figures.clone();
    for operation in figures["operations"].as_array_mut().into_iter().flatten() {
        operation.as_object_mut().unwrap().remove("items_written");
    }
    figures
}

fn units(value: f64) -> String {
    format!("{value}")
}

fn apis(tally: &Tally) -> String {
    let calls = tally
        .dynamodb
        .iter()
        .map(|(api, cost)| format!("{api} ×{}", cost.calls))
        .collect::<Vec<_>>();
    if calls.is_empty() {
        "—".to_owned()
    } else {
        calls.join(", ")
    }
}

/// Local's units, then the documented ones.
fn both(local: f64, documented: f64) -> String {
    format!("{} / {}", units(local), units(documented))
}

fn summary(tally: &Tally) -> String {
    format!(
        "{} round trips, RCU {}, WCU {}, {} SQS",
        tally.dynamodb_calls(),
        both(tally.read_units(), tally.documented_read_units()),
        both(tally.write_units(), tally.documented_write_units()),
        tally.sqs_calls()
    )
}

/// The figures as a markdown table.
pub fn to_markdown(measured: &[Measured]) -> String {
    let mut out = String::from(
        "| Operation | Function | DynamoDB round trips | RCU (Local / documented) | WCU (Local / documented) | SQS calls | Items written (max bytes) | First in a new container |\n\
         | --- | --- | --- | ---: | ---: | --- | --- | --- |\n",
    );
    for m in measured {
        let sqs = if m.steady.sqs.is_empty() {
            "—".to_owned()
        } else {
            m.steady
                .sqs
                .iter()
                .map(|(api, calls)| format!("{api} ×{calls}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let items = m
            .item_bytes
            .iter()
            .map(|(table, (count, max, _))| format!("{table} {count}× ≤{max}"))
            .collect::<Vec<_>>()
            .join(", ");
        let first = if m.first.counts() == m.steady.counts() {
            "same".to_owned()
        } else {
            format!("{} ({})", summary(&m.first), apis(&m.first))
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.name,
            m.function,
            apis(&m.steady),
            both(m.steady.read_units(), m.steady.documented_read_units()),
            both(m.steady.write_units(), m.steady.documented_write_units()),
            sqs,
            if items.is_empty() {
                "—".to_owned()
            } else {
                items
            },
            first
        ));
    }
    out
}
