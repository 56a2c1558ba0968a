//! Opening a table: checks (or creates) the table, its key schema, DynamoDB's TTL setting and
//! the layout metadata item.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use crate::error::sdk_error;
use crate::layout::{Item, LAYOUT_VERSION, Layout, META_PK, META_SK, PK, SK, primary_key};
use crate::{Error, Result};

/// Makes sure the table exists with a compatible layout, creating it when allowed.
pub(crate) async fn open_table(client: &Client, layout: &Layout, create: bool) -> Result<()> {
    let table = layout.table.as_str();
    let described = client.describe_table().table_name(table).send().await;
    let description = match described {
        Ok(out) => out.table,
        Err(err) => match sdk_error(err, table) {
            Error::TableNotFound { .. } if create => {
                create_table(client, layout).await?;
                None
            }
            other => return Err(other),
        },
    };
    if let Some(description) = description {
        check_key_schema(table, description.key_schema())?;
    }
    if let Some(attribute) = &layout.ttl_attribute {
        ensure_ttl(client, table, attribute).await?;
    }
    check_meta(client, layout).await
}

async fn create_table(client: &Client, layout: &Layout) -> Result<()> {
    let table = layout.table.as_str();
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(|e| Error::Config(e.to_string()))
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::Config(e.to_string()))
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Someone else created it at the same time: fine.
        Err(err) => match sdk_error(err, table) {
            Error::Service { code, .. } if code == "ResourceInUseException" => {}
            other => return Err(other),
        },
    }
    wait_active(client, table).await
}

async fn wait_active(client: &Client, table: &str) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(50);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(e, table))?;
        let status = out.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Timeout {
                timeout: Some(std::time::Duration::from_secs(120)),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(2));
    }
}

fn check_key_schema(table: &str, schema: &[KeySchemaElement]) -> Result<()> {
    let has = |name: &str, key_type: KeyType| {
        schema
            .iter()
            .any(|k| k.attribute_name() == name && *k.key_type() == key_type)
    };
    if schema.len() == 2 && has(PK, KeyType::Hash) && has(SK, KeyType::Range) {
        return Ok(());
    }
    let found: Vec<String> = schema
        .iter()
        .map(|k| format!("{} ({})", k.attribute_name(), k.key_type().as_str()))
        .collect();
    Err(Error::LayoutMismatch {
        table: table.to_owned(),
        detail: format!(
            "key schema is [{}], expected [pk (HASH), sk (RANGE)]",
            found.join(", ")
        ),
    })
}

async fn ensure_ttl(client: &Client, table: &str, attribute: &str) -> Result<()> {
    let out = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(e, table))?;
    let current = out.time_to_live_description;
    let status = current.as_ref().and_then(|d| d.time_to_live_status.clone());
    let current_attr = current.as_ref().and_then(|d| d.attribute_name.clone());
    match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
            if current_attr.as_deref() == Some(attribute) {
                Ok(())
            } else {
                Err(Error::LayoutMismatch {
                    table: table.to_owned(),
                    detail: format!(
                        "DynamoDB TTL is enabled on attribute {:?}, but this map uses {attribute:?}",
                        current_attr.unwrap_or_default()
                    ),
                })
            }
        }
        _ => {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()
                .map_err(|e| Error::Config(e.to_string()))?;
            match client
                .update_time_to_live()
                .table_name(table)
                .time_to_live_specification(spec)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => match sdk_error(err, table) {
                    // Enabled concurrently by another client.
                    Error::Service { code, message }
                        if code == "ValidationException" && message.contains("already enabled") =>
                    {
                        Ok(())
                    }
                    other => Err(other),
                },
            }
        }
    }
}

async fn check_meta(client: &Client, layout: &Layout) -> Result<()> {
    let table = layout.table.as_str();
    let key = primary_key(META_PK.to_owned(), META_SK.to_owned());
    for _ in 0..3 {
        let out = client
            .get_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(e, table))?;
        if let Some(item) = out.item {
            return compare_meta(layout, &item);
        }
        let mut item = key.clone();
        item.insert(
            "version".into(),
            AttributeValue::N(LAYOUT_VERSION.to_owned()),
        );
        item.insert(
            "shards".into(),
            AttributeValue::N(layout.shards.to_string()),
        );
        let put = client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(()),
            Err(err) => match sdk_error(err, table) {
                // Written concurrently: read it back and compare.
                Error::Service { code, .. } if code == "ConditionalCheckFailedException" => {}
                other => return Err(other),
            },
        }
    }
    Err(Error::LayoutMismatch {
        table: table.to_owned(),
        detail: "the layout metadata item could not be read or written".into(),
    })
}

fn compare_meta(layout: &Layout, item: &Item) -> Result<()> {
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    };
    let mismatch = |detail: String| Error::LayoutMismatch {
        table: layout.table.clone(),
        detail,
    };
    match number("version") {
        Some(1) => {}
        Some(v) => {
            return Err(mismatch(format!(
                "layout version {v} is not supported (expected 1)"
            )));
        }
        None => return Err(mismatch("the layout metadata item is malformed".into())),
    }
    match number("shards") {
        Some(s) if s == u64::from(layout.shards) => Ok(()),
        Some(s) => Err(mismatch(format!(
            "the table was created with {s} shards per namespace, this map is configured with {}",
            layout.shards
        ))),
        None => Err(mismatch("the layout metadata item is malformed".into())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn meta_comparison() {
        let layout = Layout {
            table: "t".into(),
            namespace: "n".into(),
            shards: 8,
            ttl_attribute: None,
        };
        let meta = |v: &str, s: &str| {
            HashMap::from([
                ("version".to_owned(), AttributeValue::N(v.into())),
                ("shards".to_owned(), AttributeValue::N(s.into())),
            ])
        };
        assert!(compare_meta(&layout, &meta("1", "8")).is_ok());
        assert!(matches!(
            compare_meta(&layout, &meta("1", "16")),
            Err(Error::LayoutMismatch { .. })
        ));
        assert!(matches!(
            compare_meta(&layout, &meta("2", "8")),
            Err(Error::LayoutMismatch { .. })
        ));
        assert!(matches!(
            compare_meta(&layout, &HashMap::new()),
            Err(Error::LayoutMismatch { .. })
        ));
    }
}
