//! Baseline: builds the DynamoDB and SQS clients, as every function does,
//! then starts the runtime; each invocation makes one DynamoDB call (a
//! `GetItem` of a key that is not there).

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // With the HTTPS client every function builds (rustls and ring).
    use aws_smithy_http_client::tls;
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await;
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    let _sqs = aws_sdk_sqs::Client::new(&config);
    let table = std::env::var("HOOKLINE_TABLE")?;
    let (dynamo, table) = (&dynamo, &table);
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let key = aws_sdk_dynamodb::types::AttributeValue::S("baseline".into());
            let got = dynamo
                .get_item()
                .table_name(table)
                .key("pk", key.clone())
                .key("sk", key)
                .send()
                .await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({"found": got.item.is_some()}))
        },
    ))
    .await
}
