//! `export` and `import`: every item of a namespace as stored, in DynamoDB JSON, one item per
//! line after a header line.
//!
//! An export holds the namespace's markers (in the table's metadata partition), its large
//! values' generation records and chunks, then its entries (expired ones too), in that order:
//! the order in which the large-value protocol writes them, which `import` keeps, so that no
//! entry is written before the chunks it refers to. Nothing is decoded or re-encoded: values,
//! signatures, serializer ids and expiries go back byte for byte.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dynamodict::aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use dynamodict::layout::{
    self, namespace_marker_keys, namespace_of_partition, namespace_partitions,
};
use dynamodict::{AsyncDynamoDbDict, OpenMode};
use serde::{Deserialize, Serialize};

use crate::connect::Connection;
use crate::ddbjson::{self, Item};
use crate::error::{CliError, CliResult};
use crate::output::Output;
use crate::progress;

/// The version of the export format, in every header.
const FORMAT_VERSION: u32 = 1;
/// Items per BatchWriteItem (DynamoDB's limit).
const BATCH: usize = 25;
/// Attempts at writing a batch's unprocessed items before giving up.
const MAX_ATTEMPTS: u32 = 10;

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The format version; its presence marks the file as an export.
    dynamodict_export: u32,
    /// Where it was taken from.
    table: String,
    namespace: String,
    /// The source table's shards per namespace (entries' partitions depend on it).
    shards: u16,
    /// The expiry attribute the source table recorded, if any.
    ttl_attribute: Option<String>,
}

/// A namespace `export` and `import` accept: a map's, or a cache's (`<name>.responses`,
/// `<name>.redirects`), whose items they copy as they are.
fn check_namespace(namespace: &str) -> CliResult {
    let base = layout::RESERVED_SUFFIXES
        .iter()
        .find_map(|suffix| namespace.strip_suffix(suffix))
        .filter(|base| !base.is_empty())
        .unwrap_or(namespace);
    layout::validate_namespace(base).map_err(|_| {
        CliError::new(format!(
            "invalid namespace {namespace:?}: 1 to 255 bytes of printable characters other than '#'"
        ))
    })
}

/// A temporary file of this process, unique.
fn temp_path(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "dynamodict-{what}-{}-{nanos}.jsonl",
        std::process::id()
    ))
}

fn io_error(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> CliError {
    move |e| CliError::new(format!("{what}: {e}"))
}

/// `export`: writes the namespace to `output` (through `<output>.partial`, renamed at the end)
/// or to stdout (through a temporary file, copied once complete).
pub async fn export(
    conn: &Connection,
    table: &str,
    namespace: &str,
    output: Option<&Path>,
    out: &mut Output,
) -> CliResult {
    check_namespace(namespace)?;
    let layout = conn.table_layout(table).await?;
    let path = match output {
        Some(file) => {
            let mut partial = file.as_os_str().to_owned();
            partial.push(".partial");
            PathBuf::from(partial)
        }
        None => temp_path("export"),
    };
    let header = Header {
        dynamodict_export: FORMAT_VERSION,
        table: table.to_owned(),
        namespace: namespace.to_owned(),
        shards: layout.shards,
        ttl_attribute: layout.ttl_attribute.clone(),
    };
    let written = write_export(conn, &header, &path).await;
    let count = match written {
        Ok(count) => count,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    match output {
        Some(file) => {
            std::fs::rename(&path, file)
                .map_err(io_error(format!("cannot write {}", file.display())))?;
            out.line(format!(
                "exported {count} items of namespace {namespace:?} of table {table:?} to {}",
                file.display()
            ))
        }
        None => {
            out.spool(path);
            Ok(())
        }
    }
}

/// Writes the header and every item to `path`; returns the number of items.
async fn write_export(conn: &Connection, header: &Header, path: &Path) -> CliResult<u64> {
    let cannot_write = || io_error(format!("cannot write {}", path.display()));
    let mut file = BufWriter::new(File::create(path).map_err(cannot_write())?);
    let header_line = serde_json::to_string(header).map_err(|e| CliError::new(e.to_string()))?;
    writeln!(file, "{header_line}").map_err(cannot_write())?;
    let table = header.table.as_str();
    let bar = progress::counter("exporting", "items");
    let mut count = 0u64;
    let mut write_item = |item: &Item| -> CliResult {
        let json = ddbjson::item_to_json(item).map_err(CliError::new)?;
        writeln!(file, "{json}").map_err(cannot_write())?;
        count += 1;
        bar.inc(1);
        Ok(())
    };
    for key in namespace_marker_keys(&header.namespace) {
        let found = conn
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CliError::sdk(e, Some(table)))?;
        if let Some(item) = found.item {
            write_item(&item)?;
        }
    }
    // Records, then chunks, then entries: the order of the large-value protocol.
    let mut partitions = namespace_partitions(&header.namespace, header.shards);
    partitions.sort_by_key(|pk| {
        if pk.ends_with("#g") {
            0
        } else if pk.ends_with("#c") {
            1
        } else {
            2
        }
    });
    for pk in partitions {
        let mut pages = conn
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", layout::PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| CliError::sdk(e, Some(table)))?;
            for item in page.items() {
                write_item(item)?;
            }
        }
    }
    bar.finish_and_clear();
    file.into_inner()
        .map_err(|e| cannot_write()(e.into_error()))?
        .sync_all()
        .map_err(cannot_write())?;
    Ok(count)
}

/// `import`: checks the whole input, opens (or creates) the table with the export's layout,
/// then writes every item back.
pub async fn import(
    conn: &Connection,
    table: &str,
    namespace: Option<&str>,
    input: Option<&Path>,
    out: &mut Output,
) -> CliResult {
    layout::validate_table_name(table)?;
    if let Some(namespace) = namespace {
        check_namespace(namespace)?;
    }
    match input {
        Some(path) => import_file(conn, table, namespace, path, out).await,
        None => {
            // Read twice (checked, then written): stdin is kept in a temporary file.
            let path = temp_path("import");
            let spooled = File::create(&path)
                .and_then(|mut file| std::io::copy(&mut std::io::stdin().lock(), &mut file))
                .map_err(io_error("cannot keep stdin in a temporary file"));
            let result = match spooled {
                Ok(_) => import_file(conn, table, namespace, &path, out).await,
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_file(&path);
            result
        }
    }
}

async fn import_file(
    conn: &Connection,
    table: &str,
    namespace: Option<&str>,
    path: &Path,
    out: &mut Output,
) -> CliResult {
    let name = path.display().to_string();
    let (header, total) = check_input(path, &name)?;
    let target = namespace.unwrap_or(&header.namespace).to_owned();
    open_for_import(conn, table, &header).await?;
    let bar = progress::bar(total, "items");
    bar.set_message("importing");
    let mut written = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let mut lines = read_lines(path, &name)?;
    lines.next(); // the header, checked
    let result: CliResult = async {
        for (number, line) in lines {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let item = parse_item(&line, &header.namespace)
                .map_err(|e| CliError::new(format!("{name}: line {number}: {e}")))?;
            batch.push(rehome(item, &header.namespace, &target));
            if batch.len() == BATCH {
                write_batch(conn, table, std::mem::take(&mut batch)).await?;
                written += BATCH as u64;
                bar.inc(BATCH as u64);
            }
        }
        let last = batch.len() as u64;
        if last > 0 {
            write_batch(conn, table, batch).await?;
            written += last;
            bar.inc(last);
        }
        Ok(())
    }
    .await;
    bar.finish_and_clear();
    result.map_err(|e| {
        e.context(format!(
            "import stopped after writing {written} of {total} items (importing again is \
             safe: every item is written as it is)"
        ))
    })?;
    out.line(format!(
        "imported {written} items into namespace {target:?} of table {table:?}"
    ))
}

/// The lines of `path`, numbered from 1.
fn read_lines(
    path: &Path,
    name: &str,
) -> CliResult<impl Iterator<Item = (usize, CliResult<String>)>> {
    let file = File::open(path).map_err(io_error(format!("cannot read {name}")))?;
    let name = name.to_owned();
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .map(move |(i, line)| {
            let number = i + 1;
            (
                number,
                line.map_err(|e| CliError::new(format!("{name}: line {number}: {e}"))),
            )
        }))
}

/// Pass one: the header, and every item line checked. Returns the header and the item count.
fn check_input(path: &Path, name: &str) -> CliResult<(Header, u64)> {
    let mut lines = read_lines(path, name)?;
    let not_export = || {
        CliError::new(format!(
            "{name}: line 1: not a dynamodict export (its first line must be the header \
             `export` writes)"
        ))
    };
    let (_, first) = lines.next().ok_or_else(not_export)?;
    let header: Header = serde_json::from_str(&first?).map_err(|_| not_export())?;
    if header.dynamodict_export != FORMAT_VERSION {
        return Err(CliError::new(format!(
            "{name}: line 1: export format version {} is not supported (this tool reads version \
             {FORMAT_VERSION})",
            header.dynamodict_export
        )));
    }
    if header.shards == 0 || header.shards > layout::MAX_SHARDS {
        return Err(CliError::new(format!(
            "{name}: line 1: invalid shard count {}",
            header.shards
        )));
    }
    check_namespace(&header.namespace).map_err(|e| e.context(format!("{name}: line 1")))?;
    let mut count = 0u64;
    for (number, line) in lines {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        parse_item(&line, &header.namespace)
            .map_err(|e| CliError::new(format!("{name}: line {number}: {e}")))?;
        count += 1;
    }
    Ok((header, count))
}

/// One item line, checked: DynamoDB JSON with string `pk` and `sk`, belonging to `namespace`.
fn parse_item(line: &str, namespace: &str) -> Result<Item, String> {
    let json: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let item = ddbjson::item_from_json(json)?;
    let key_part = |name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(format!("the item has no string {name:?} attribute")),
    };
    let (pk, sk) = (key_part(layout::PK)?, key_part(layout::SK)?);
    let ours = namespace_of_partition(&pk) == Some(namespace)
        || namespace_marker_keys(namespace)
            .iter()
            .any(|key| key_matches(key, &pk, &sk));
    if !ours {
        return Err(format!(
            "the item pk = {pk:?}, sk = {sk:?} is not in namespace {namespace:?}, the one this \
             export was taken from"
        ));
    }
    Ok(item)
}

fn key_matches(key: &Item, pk: &str, sk: &str) -> bool {
    matches!(key.get(layout::PK), Some(AttributeValue::S(p)) if p == pk)
        && matches!(key.get(layout::SK), Some(AttributeValue::S(s)) if s == sk)
}

/// The item moved from namespace `from` to namespace `to` (the same item when they are the
/// same): its partition key, or its marker key, renamed. Signatures cover the key, not the
/// namespace, so they stay valid.
fn rehome(mut item: Item, from: &str, to: &str) -> Item {
    if from == to {
        return item;
    }
    let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
        (item.get(layout::PK), item.get(layout::SK))
    else {
        return item;
    };
    if namespace_of_partition(pk) == Some(from) {
        let moved = format!("{to}{}", &pk[from.len()..]);
        item.insert(layout::PK.to_owned(), AttributeValue::S(moved));
        return item;
    }
    let markers = namespace_marker_keys(from);
    if let Some(index) = markers.iter().position(|key| key_matches(key, pk, sk))
        && let Some(new_key) = namespace_marker_keys(to).into_iter().nth(index)
    {
        item.extend(new_key);
    }
    item
}

/// Opens the table as the export's layout says: a table with another shard count is refused.
/// A missing table is created (with DynamoDB's TTL on the expiry attribute, as a map creates
/// one); an existing table's settings are never changed.
async fn open_for_import(conn: &Connection, table: &str, header: &Header) -> CliResult {
    let open = |mode| {
        let builder = AsyncDynamoDbDict::<serde_json::Value>::builder(table)
            .sdk_config(&conn.config)
            .open_mode(mode)
            .shards(header.shards);
        let builder = match &header.ttl_attribute {
            Some(attribute) => builder.ttl_attribute(attribute),
            None => builder,
        };
        builder.build_async()
    };
    let opened = match open(OpenMode::Verify).await {
        Err(dynamodict::Error::TableNotFound { .. }) => open(OpenMode::Create).await,
        other => other,
    };
    opened
        .map(drop)
        .map_err(|e| CliError::from(e).context("cannot import"))
}

/// Writes one batch, retrying its unprocessed items with exponential backoff.
async fn write_batch(conn: &Connection, table: &str, items: Vec<Item>) -> CliResult {
    let mut requests = items
        .into_iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| CliError::new(e.to_string()))?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<CliResult<Vec<_>>>()?;
    let mut delay = Duration::from_millis(50);
    for _ in 0..MAX_ATTEMPTS {
        let out = conn
            .client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| CliError::sdk(e, Some(table)))?;
        requests = out
            .unprocessed_items
            .and_then(|mut unprocessed| unprocessed.remove(table))
            .unwrap_or_default();
        if requests.is_empty() {
            return Ok(());
        }
        let jitter = Duration::from_millis(fastrand::u64(0..=delay.as_millis() as u64));
        tokio::time::sleep(jitter).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Err(CliError::new(format!(
        "DynamoDB left {} items unprocessed after {MAX_ATTEMPTS} attempts (throttling)",
        requests.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pk: &str, sk: &str) -> Item {
        Item::from([
            (layout::PK.to_owned(), AttributeValue::S(pk.into())),
            (layout::SK.to_owned(), AttributeValue::S(sk.into())),
        ])
    }

    #[test]
    fn items_move_between_namespaces() {
        assert_eq!(
            rehome(item("a#3#c", "t1:00000"), "a", "b"),
            item("b#3#c", "t1:00000")
        );
        assert_eq!(rehome(item("a#3", "k"), "a", "a"), item("a#3", "k"));
        let marker = namespace_marker_keys("a").remove(0);
        let moved = rehome(marker, "a", "bb");
        assert_eq!(moved, namespace_marker_keys("bb").remove(0));
    }

    #[test]
    fn lines_are_checked() {
        assert!(parse_item(r#"{"pk":{"S":"a#0"},"sk":{"S":"k"}}"#, "a").is_ok());
        assert!(parse_item(r#"{"pk":{"S":"a#0"},"sk":{"S":"k"}}"#, "b").is_err());
        assert!(parse_item(r#"{"pk":{"S":"a#0"}}"#, "a").is_err());
        assert!(parse_item(r#"{"pk":"a#0","sk":{"S":"k"}}"#, "a").is_err());
        assert!(parse_item("not json", "a").is_err());
        assert!(check_namespace("x.responses").is_ok());
        assert!(check_namespace("a#b").is_err());
    }
}
