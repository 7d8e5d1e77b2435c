//! The least a Rust Lambda function does at init: the runtime and an answer. Built with the same
//! release profile as the functions, so their init time and CPU divided by this one's say what
//! the engine adds (`infra/scripts/lambda-init.sh` prints the ratio).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
