//! Lambda entry point: build the DynamoDB stores once (warming the first connection), serve
//! the widget's public routes. It reads no secret: a browser proves nothing but its key and
//! origin, which the widget store holds.

use shared::config::LambdaStart;
use shared::outbound::triggers::Dispatcher;
use shared::store::dynamo::DynamoStore;
use shared::store::dynamo::widget::DynamoWidgetStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let start = LambdaStart::new().await;
    let contacts = DynamoStore::from_env(&start.dynamo)?;
    let widgets = DynamoWidgetStore::from_env(&start.dynamo)?;
    contacts.warm_up().await;
    let state = widget::WidgetState::new(Arc::new(contacts), Arc::new(widgets));
    state.send_outcomes_to(Arc::new(Dispatcher::from_env(&start)?));
    lambda_http::run(shared::http::serve_json_errors(widget::router(state))).await
}
