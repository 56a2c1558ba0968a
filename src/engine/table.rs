//! Opening a table: checks (or creates) the table, its key schema, DynamoDB's TTL setting and
//! the layout item, with as few requests as the [`OpenMode`] allows.
//!
//! The layout item records the layout version, the shards per namespace and, once this crate
//! has seen DynamoDB's TTL enabled on the expiry attribute, that attribute. A table opened
//! before costs one consistent `GetItem` of that item: a key schema other than `pk`/`sk`
//! fails it (then one `DescribeTable` says how), a missing table answers
//! `ResourceNotFoundException`, and the recorded TTL attribute spares `DescribeTimeToLive`.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use tokio::sync::OnceCell;

use super::OpenMode;
use super::connection::Connection;
use crate::error::sdk_error;
use crate::layout::{
    Item, LAYOUT_VERSION, Layout, META_SHARDS, META_TTL, META_VERSION, PK, SK, layout_item_key,
};
use crate::{Error, Result};

/// The layout check of a map's table: passed at open, or deferred to the first operation
/// ([`OpenMode::Trust`]). Shared by every clone of a map and its sibling namespaces.
pub(crate) struct TableCheck {
    done: OnceCell<()>,
}

impl TableCheck {
    fn passed() -> Self {
        TableCheck {
            done: OnceCell::new_with(Some(())),
        }
    }

    fn deferred() -> Self {
        TableCheck {
            done: OnceCell::new(),
        }
    }

    /// Checks the layout unless that was done: one consistent `GetItem` (and a `PutItem` of the
    /// layout item in a table that has none). Concurrent first callers wait for one check; a
    /// failed check is tried again by the next call.
    pub(crate) async fn ensure(&self, conn: &Connection, layout: &Layout) -> Result<()> {
        self.done
            .get_or_try_init(|| check_layout(conn, layout))
            .await
            .map(|_| ())
    }
}

/// Opens `layout`'s table as `mode` says; `manage_ttl` lets [`OpenMode::Create`] enable
/// DynamoDB's TTL on the expiry attribute.
pub(crate) async fn open_table(
    conn: &Connection,
    layout: &Layout,
    mode: OpenMode,
    manage_ttl: bool,
) -> Result<TableCheck> {
    let create = match mode {
        OpenMode::Trust => return Ok(TableCheck::deferred()),
        OpenMode::Create => true,
        OpenMode::Verify => false,
    };
    let (meta, created) = match read_meta(conn, layout).await {
        Ok(meta) => (meta, false),
        Err(Error::TableNotFound { .. }) if create => {
            create_table(conn, layout).await?;
            (None, true)
        }
        Err(err) => return Err(explain_key_error(conn, layout, err).await),
    };
    if let Some(meta) = &meta {
        compare_meta(layout, meta)?;
    }
    let ttl = match layout.ttl_attribute.as_deref() {
        Some(attribute) if recorded_ttl(meta.as_ref()) != Some(attribute) => {
            let manage = create && manage_ttl;
            check_ttl(conn, &layout.table, attribute, manage, created).await?
        }
        _ => TtlSetting::Known,
    };
    let record = match ttl {
        TtlSetting::Enabled => layout.ttl_attribute.as_deref(),
        TtlSetting::Known | TtlSetting::NotEnabled => None,
    };
    match (meta, record) {
        (None, record) => write_meta(conn, layout, record).await?,
        (Some(_), Some(attribute)) => record_ttl(conn, layout, attribute).await,
        (Some(_), None) => {}
    }
    Ok(TableCheck::passed())
}

/// The layout check of [`OpenMode::Trust`], before its first operation.
async fn check_layout(conn: &Connection, layout: &Layout) -> Result<()> {
    match read_meta(conn, layout).await {
        Ok(Some(meta)) => compare_meta(layout, &meta),
        Ok(None) => write_meta(conn, layout, None).await,
        Err(err) => Err(explain_key_error(conn, layout, err).await),
    }
}

/// The layout item, read consistently.
async fn read_meta(conn: &Connection, layout: &Layout) -> Result<Option<Item>> {
    let table = layout.table.as_str();
    conn.client()
        .get_item()
        .table_name(table)
        .set_key(Some(layout_item_key()))
        .consistent_read(true)
        .send()
        .await
        .map(|out| out.item)
        .map_err(|e| sdk_error(e, table, &conn.endpoint))
}

/// A `ValidationException` on the layout item's key means a table with another key schema:
/// says which (one `DescribeTable`). Any other error is returned as it is.
async fn explain_key_error(conn: &Connection, layout: &Layout, err: Error) -> Error {
    if !matches!(&err, Error::Service { code, .. } if code == "ValidationException") {
        return err;
    }
    let table = layout.table.as_str();
    match conn
        .client()
        .describe_table()
        .table_name(table)
        .send()
        .await
    {
        Ok(out) => match out.table {
            Some(description) => check_key_schema(table, description.key_schema()).err(),
            None => None,
        }
        .unwrap_or(err),
        Err(_) => err,
    }
}

/// The expiry attribute the layout item records, if any.
fn recorded_ttl(meta: Option<&Item>) -> Option<&str> {
    match meta?.get(META_TTL)? {
        AttributeValue::S(attribute) => Some(attribute),
        _ => None,
    }
}

async fn create_table(conn: &Connection, layout: &Layout) -> Result<()> {
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
    let created = conn
        .client()
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
        Err(err) => match sdk_error(err, table, &conn.endpoint) {
            Error::Service { code, .. } if code == "ResourceInUseException" => {}
            other => return Err(other),
        },
    }
    wait_active(conn, table).await
}

async fn wait_active(conn: &Connection, table: &str) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(50);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let out = conn
            .client()
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(e, table, &conn.endpoint))?;
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

/// What [`check_ttl`] found out about DynamoDB's TTL on the table.
enum TtlSetting {
    /// Enabled (or being enabled) on the map's expiry attribute: worth recording.
    Enabled,
    /// Not enabled, not allowed to be enabled, or the server has no TTL: reads hide expired
    /// values all the same; nothing to record.
    NotEnabled,
    /// Already recorded in the layout item, or the map has no expiry: nothing to check.
    Known,
}

/// Checks DynamoDB's TTL setting for `attribute`, enabling it when `manage` allows (a table
/// just `created` is known to have none, so it is enabled without asking first).
async fn check_ttl(
    conn: &Connection,
    table: &str,
    attribute: &str,
    manage: bool,
    created: bool,
) -> Result<TtlSetting> {
    if !created {
        match describe_ttl(conn, table).await {
            Ok(Some(current)) if current == attribute => return Ok(TtlSetting::Enabled),
            Ok(Some(current)) => return Err(other_ttl_attribute(table, &current, attribute)),
            Ok(None) => {}
            // A server without TTL (dynalite), or a role that may not look: reads still hide
            // expired values.
            Err(err) if ttl_unsupported(&err) => return Ok(TtlSetting::NotEnabled),
            Err(Error::AccessDenied { .. }) if !manage => return Ok(TtlSetting::NotEnabled),
            Err(err) => return Err(err),
        }
    }
    if !manage {
        return Ok(TtlSetting::NotEnabled);
    }
    enable_ttl(conn, table, attribute).await
}

/// The attribute DynamoDB's TTL is enabled (or being enabled) on, if any.
async fn describe_ttl(conn: &Connection, table: &str) -> Result<Option<String>> {
    let out = conn
        .client()
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(e, table, &conn.endpoint))?;
    let description = out.time_to_live_description;
    let status = description
        .as_ref()
        .and_then(|d| d.time_to_live_status.clone());
    Ok(match status {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => Some(
            description
                .and_then(|d| d.attribute_name)
                .unwrap_or_default(),
        ),
        _ => None,
    })
}

async fn enable_ttl(conn: &Connection, table: &str, attribute: &str) -> Result<TtlSetting> {
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attribute)
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    let updated = conn
        .client()
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await;
    let err = match updated {
        Ok(_) => return Ok(TtlSetting::Enabled),
        Err(err) => sdk_error(err, table, &conn.endpoint),
    };
    match err {
        // Enabled concurrently by another client: on which attribute?
        Error::Service { code, message }
            if code == "ValidationException" && message.contains("already enabled") =>
        {
            match describe_ttl(conn, table).await? {
                Some(current) if current != attribute => {
                    Err(other_ttl_attribute(table, &current, attribute))
                }
                _ => Ok(TtlSetting::Enabled),
            }
        }
        err if ttl_unsupported(&err) => Ok(TtlSetting::NotEnabled),
        Error::AccessDenied { message } => Err(Error::AccessDenied {
            message: format!(
                "{message}. These credentials may not enable DynamoDB's TTL on table {table:?} \
                 (UpdateTimeToLive). Enable it on attribute {attribute:?} once with a role that \
                 may (`aws dynamodb update-time-to-live --table-name {table} \
                 --time-to-live-specification Enabled=true,AttributeName={attribute}`), or open \
                 the map with `.manage_ttl(false)` or `.open_mode(OpenMode::Verify)`: reads hide \
                 expired values either way"
            ),
        }),
        err => Err(err),
    }
}

/// Whether the server has no TTL operations (dynalite answers `UnknownOperationException`).
fn ttl_unsupported(err: &Error) -> bool {
    matches!(err, Error::Service { code, .. } if code.starts_with("UnknownOperation"))
}

fn other_ttl_attribute(table: &str, current: &str, attribute: &str) -> Error {
    Error::LayoutMismatch {
        table: table.to_owned(),
        detail: format!(
            "DynamoDB TTL is enabled on attribute {current:?}, but this map uses {attribute:?}"
        ),
    }
}

/// Writes the layout item unless another map did first (then checks theirs).
async fn write_meta(conn: &Connection, layout: &Layout, ttl: Option<&str>) -> Result<()> {
    let table = layout.table.as_str();
    let mut item = layout_item_key();
    item.insert(
        META_VERSION.into(),
        AttributeValue::N(LAYOUT_VERSION.to_owned()),
    );
    item.insert(
        META_SHARDS.into(),
        AttributeValue::N(layout.shards.to_string()),
    );
    if let Some(attribute) = ttl {
        item.insert(META_TTL.into(), AttributeValue::S(attribute.to_owned()));
    }
    for _ in 0..3 {
        let put = conn
            .client()
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put.map_err(|e| sdk_error(e, table, &conn.endpoint)) {
            Ok(_) => return Ok(()),
            // Written concurrently: read it back and compare.
            Err(Error::Service { code, .. }) if code == "ConditionalCheckFailedException" => {
                if let Some(meta) = read_meta(conn, layout).await? {
                    return compare_meta(layout, &meta);
                }
            }
            Err(err) => return Err(err),
        }
    }
    Err(Error::LayoutMismatch {
        table: table.to_owned(),
        detail: "the layout metadata item could not be read or written".into(),
    })
}

/// Records in the layout item that DynamoDB's TTL is enabled on `attribute`, sparing later
/// opens a `DescribeTimeToLive`. Only a saving: a failure changes nothing but the next open's
/// request count, so it is not reported.
async fn record_ttl(conn: &Connection, layout: &Layout, attribute: &str) {
    let _ = conn
        .client()
        .update_item()
        .table_name(layout.table.as_str())
        .set_key(Some(layout_item_key()))
        .update_expression("SET #t = :a")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_names("#t", META_TTL)
        .expression_attribute_values(":a", AttributeValue::S(attribute.to_owned()))
        .send()
        .await;
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
    match number(META_VERSION) {
        Some(1) => {}
        Some(v) => {
            return Err(mismatch(format!(
                "layout version {v} is not supported (expected 1)"
            )));
        }
        None => return Err(mismatch("the layout metadata item is malformed".into())),
    }
    match number(META_SHARDS) {
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
