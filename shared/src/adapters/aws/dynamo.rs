use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

use crate::ports::Clock;
use crate::ports::store::{
    Cond, Item, Key, Page, Put, Query, Store, StoreError, Write, check_item_size, check_key,
    check_write_all, cursor, expiry_secs, is_live,
};

pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

type Attrs = HashMap<String, AttributeValue>;

impl DynamoStore {
    /// One `UpdateItem`: the item's new version.
    async fn update(&self, key: &Key, parts: UpdateParts) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(parts.update)
            .set_condition_expression(parts.condition)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| num(a, "v"))
            .unwrap_or(0) as u64)
    }

    pub fn new(client: Client, table: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.to_string(),
            clock,
        }
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().timestamp()
    }
}

/// Creates the table the way `template.yaml` does (for tests and first runs).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("complete attribute definition")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("complete key schema")
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(backend)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .expect("complete TTL specification"),
        )
        .send()
        .await
        .map_err(backend)?;
    Ok(())
}

fn backend<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    let code = e.code().unwrap_or_default().to_string();
    let message = e.message().unwrap_or_default().to_string();
    match code.as_str() {
        "ConditionalCheckFailedException" => StoreError::Conflict,
        "TransactionCanceledException" if message.contains("ConditionalCheckFailed") => {
            StoreError::Conflict
        }
        "ValidationException" if message.to_lowercase().contains("size") => {
            StoreError::TooLarge(message)
        }
        _ if code.is_empty() => StoreError::Backend(format!("{e:?}")),
        _ => StoreError::Backend(format!("{code}: {message}")),
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_attrs(key: &Key) -> Attrs {
    HashMap::from([
        ("pk".to_string(), s(&key.pk)),
        ("sk".to_string(), s(&key.sk)),
    ])
}

fn num(attrs: &Attrs, name: &str) -> Option<i64> {
    match attrs.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn text<'a>(attrs: &'a Attrs, name: &str) -> Result<&'a str, StoreError> {
    match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Backend(format!(
            "item without string attribute {name}"
        ))),
    }
}

fn decode(attrs: Attrs) -> Result<Item, StoreError> {
    let key = Key::new(text(&attrs, "pk")?, text(&attrs, "sk")?);
    let body = match attrs.get("d") {
        Some(d) => serde_dynamo::from_attribute_value(d.clone())
            .map_err(|e| StoreError::Backend(format!("corrupt item {key:?}: {e}")))?,
        None => serde_json::Value::Null,
    };
    Ok(Item {
        body,
        version: num(&attrs, "v").unwrap_or(0) as u64,
        expires_at: num(&attrs, "ttl").and_then(|t| DateTime::<Utc>::from_timestamp(t, 0)),
        key,
    })
}

/// One update expression for puts, alone or in a transaction: it writes the
/// document, bumps the version and sets or clears the expiry, under the
/// condition that expresses `Cond` with expired items counted as absent.
struct UpdateParts {
    update: String,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: Attrs,
}

fn put_parts(put: &Put, now: i64) -> Result<UpdateParts, StoreError> {
    check_key(&put.key)?;
    check_item_size(&put.body)?;
    let doc = serde_dynamo::to_attribute_value(&put.body)
        .map_err(|e| StoreError::Backend(format!("cannot encode item: {e}")))?;
    let mut names = HashMap::from([
        ("#d".to_string(), "d".to_string()),
        ("#v".to_string(), "v".to_string()),
        ("#ttl".to_string(), "ttl".to_string()),
    ]);
    let mut values = HashMap::from([(":d".to_string(), doc), (":one".to_string(), n(1))]);
    let update = match expiry_secs(put.expires_at) {
        Some(t) => {
            values.insert(":ttl".into(), n(t));
            "SET #d = :d, #ttl = :ttl ADD #v :one".to_string()
        }
        None => "SET #d = :d ADD #v :one REMOVE #ttl".to_string(),
    };
    let condition = cond_expression(put.cond, now, &mut names, &mut values);
    Ok(UpdateParts {
        update,
        condition,
        names,
        values,
    })
}

fn cond_expression(
    cond: Cond,
    now: i64,
    names: &mut HashMap<String, String>,
    values: &mut Attrs,
) -> Option<String> {
    let mut live = || {
        names.insert("#ttl".into(), "ttl".into());
        values.insert(":now".into(), n(now));
    };
    match cond {
        Cond::Any => None,
        Cond::Absent => {
            live();
            Some("attribute_not_exists(pk) OR #ttl <= :now".into())
        }
        Cond::Version(v) => {
            live();
            names.insert("#v".into(), "v".into());
            values.insert(":expected".into(), n(v));
            Some("#v = :expected AND (attribute_not_exists(#ttl) OR #ttl > :now)".into())
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    fn shared(&self) -> bool {
        true
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        match out.item {
            Some(attrs) if is_live(num(&attrs, "ttl"), self.clock.now()) => decode(attrs).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, put: Put) -> Result<u64, StoreError> {
        let parts = put_parts(&put, self.now_secs())?;
        self.update(&put.key, parts).await
    }

    async fn set_fields(
        &self,
        key: &Key,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<u64, StoreError> {
        check_key(key)?;
        let mut names = HashMap::from([
            ("#d".to_string(), "d".to_string()),
            ("#v".to_string(), "v".to_string()),
            ("#ttl".to_string(), "ttl".to_string()),
        ]);
        let mut values = HashMap::from([
            (":one".to_string(), n(1)),
            (":now".to_string(), n(self.now_secs())),
        ]);
        let mut sets = Vec::with_capacity(fields.len());
        for (i, (field, value)) in fields.into_iter().enumerate() {
            let value = serde_dynamo::to_attribute_value(&value)
                .map_err(|e| StoreError::Backend(format!("cannot encode {field}: {e}")))?;
            names.insert(format!("#f{i}"), field);
            values.insert(format!(":f{i}"), value);
            sets.push(format!("#d.#f{i} = :f{i}"));
        }
        if sets.is_empty() {
            return match self.get(key).await? {
                Some(item) => Ok(item.version),
                None => Err(StoreError::Conflict),
            };
        }
        let parts = UpdateParts {
            update: format!("SET {} ADD #v :one", sets.join(", ")),
            condition: Some(
                "attribute_exists(pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)".into(),
            ),
            names,
            values,
        };
        self.update(key, parts).await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let condition = cond_expression(cond, self.now_secs(), &mut names, &mut values);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn add(
        &self,
        key: &Key,
        delta: i64,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        let now = self.now_secs();
        // DynamoDB cannot reset an expired counter and add in one expression:
        // add to a live one, else start an expired one again, and go round
        // again should another writer get in between.
        for _ in 0..10 {
            let names = HashMap::from([
                ("#n".to_string(), "n".to_string()),
                ("#ttl".to_string(), "ttl".to_string()),
            ]);
            let mut values =
                HashMap::from([(":d".to_string(), n(delta)), (":now".to_string(), n(now))]);
            let mut update = "ADD #n :d".to_string();
            if let Some(t) = expiry_secs(expires_at) {
                values.insert(":ttl".into(), n(t));
                update = "SET #ttl = :ttl ADD #n :d".into();
            }
            let live = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_attrs(key)))
                .update_expression(&update)
                .condition_expression("attribute_not_exists(#ttl) OR #ttl > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                // Not UPDATED_NEW: adding 0 changes nothing and moto then
                // answers no attribute. A counter item is small.
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match live.map_err(backend) {
                Ok(out) => {
                    return Ok(out
                        .attributes
                        .as_ref()
                        .and_then(|a| num(a, "n"))
                        .unwrap_or(0));
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
            let restart = match expiry_secs(expires_at) {
                Some(_) => "SET #n = :d, #ttl = :ttl",
                None => "SET #n = :d REMOVE #ttl",
            };
            let restarted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_attrs(key)))
                .update_expression(restart)
                .condition_expression("#ttl <= :now")
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            match restarted.map_err(backend) {
                Ok(_) => return Ok(delta),
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Backend(format!(
            "counter {key:?} kept changing under us"
        )))
    }

    async fn query(&self, q: Query) -> Result<Page, StoreError> {
        let limit = q.limit.max(1);
        let mut start = q
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, &q.pk, &q.sk_prefix))
            .transpose()?
            .map(|sk| key_attrs(&Key::new(q.pk.clone(), sk)));
        let now = self.clock.now();
        let mut items = Vec::new();
        // Ask for one more than the caller wants, so that `next_cursor` is set
        // only when something follows. DynamoDB stops at 1 MB, and expired
        // items count against its limit: keep reading until the page is full.
        loop {
            // DynamoDB refuses an empty string in a key condition.
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(&q.pk));
            request = if q.sk_prefix.is_empty() {
                request.key_condition_expression("pk = :pk")
            } else {
                request
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(&q.sk_prefix))
            };
            let out = request
                .scan_index_forward(!q.reverse)
                .consistent_read(true)
                .limit((limit + 1 - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for attrs in out.items.unwrap_or_default() {
                if is_live(num(&attrs, "ttl"), now) {
                    items.push(decode(attrs)?);
                }
            }
            match out.last_evaluated_key {
                Some(last) if items.len() <= limit => start = Some(last),
                _ => break,
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|i| cursor::encode(&q.pk, &i.key.sk))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn write_all(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_write_all(&writes)?;
        if writes.is_empty() {
            return Ok(());
        }
        let now = self.now_secs();
        let mut items = Vec::with_capacity(writes.len());
        for w in &writes {
            let item = match w {
                Write::Put(put) => {
                    let p = put_parts(put, now)?;
                    TransactWriteItem::builder()
                        .update(
                            Update::builder()
                                .table_name(&self.table)
                                .set_key(Some(key_attrs(&put.key)))
                                .update_expression(p.update)
                                .set_condition_expression(p.condition)
                                .set_expression_attribute_names(Some(p.names))
                                .set_expression_attribute_values(Some(p.values))
                                .build()
                                .map_err(|e| StoreError::Backend(e.to_string()))?,
                        )
                        .build()
                }
                Write::Delete { key, cond } => {
                    let mut names = HashMap::new();
                    let mut values = HashMap::new();
                    let condition = cond_expression(*cond, now, &mut names, &mut values);
                    TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(&self.table)
                                .set_key(Some(key_attrs(key)))
                                .set_condition_expression(condition)
                                .set_expression_attribute_names(
                                    (!names.is_empty()).then_some(names),
                                )
                                .set_expression_attribute_values(
                                    (!values.is_empty()).then_some(values),
                                )
                                .build()
                                .map_err(|e| StoreError::Backend(e.to_string()))?,
                        )
                        .build()
                }
            };
            items.push(item);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
