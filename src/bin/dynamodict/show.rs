//! The commands that look at a table or one namespace of it: `tables`, `namespaces`, `count`,
//! `keys`, `get`, and the ones that delete: `rm`, `clear`, `sweep`.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};

use base64::Engine as _;
use dynamodict::Encoded;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use dynamodict::layout::{self, namespace_of_partition};

use crate::connect::Connection;
use crate::ddbjson;
use crate::error::{CliError, CliResult};
use crate::output::Output;
use crate::progress;

/// `tables`: every table name, one per line.
pub async fn tables(conn: &Connection, out: &mut Output) -> CliResult {
    let mut names = conn.client.list_tables().into_paginator().items().send();
    let mut all = Vec::new();
    while let Some(name) = names.next().await {
        all.push(name.map_err(|e| CliError::sdk(e, None))?);
    }
    out.lines(all)
}

/// `namespaces`: the namespaces of a table, from a Scan of its partition keys.
pub async fn namespaces(conn: &Connection, table: &str, out: &mut Output) -> CliResult {
    layout::validate_table_name(table)?;
    let bar = progress::counter("scanning", "items");
    let mut pages = conn
        .client
        .scan()
        .table_name(table)
        .projection_expression("#pk")
        .expression_attribute_names("#pk", layout::PK)
        .into_paginator()
        .send();
    let mut found = BTreeSet::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| CliError::sdk(e, Some(table)))?;
        for item in page.items() {
            if let Some(AttributeValue::S(pk)) = item.get(layout::PK)
                && let Some(namespace) = namespace_of_partition(pk)
                && !found.contains(namespace)
            {
                found.insert(namespace.to_owned());
            }
        }
        bar.inc(u64::try_from(page.scanned_count()).unwrap_or(0));
    }
    bar.finish_and_clear();
    out.lines(found)
}

/// `count`: the number of live values.
pub async fn count(conn: &Connection, table: &str, namespace: &str, out: &mut Output) -> CliResult {
    let map = conn.open_map(table, namespace).await?;
    out.line(map.len().await?)
}

/// `keys`: the keys of the live values, sorted, one per line.
pub async fn keys(conn: &Connection, table: &str, namespace: &str, out: &mut Output) -> CliResult {
    let map = conn.open_map(table, namespace).await?;
    let mut stream = map.keys();
    let mut keys = Vec::new();
    while let Some(key) = stream.next().await {
        keys.push(key?);
    }
    keys.sort_unstable();
    out.lines(keys)
}

/// `get`: the value, decoded where its format allows.
pub async fn get(
    conn: &Connection,
    table: &str,
    namespace: &str,
    key: &str,
    out: &mut Output,
) -> CliResult {
    let map = conn.open_map(table, namespace).await?;
    let stored = map.get_stored(key).await?.ok_or_else(|| {
        CliError::not_found(format!(
            "not found: key {key:?} holds no live value in namespace {namespace:?} of table \
             {table:?}"
        ))
    })?;
    match stored.encoded {
        Encoded::Document { value, .. } => out.json(&ddbjson::plain(&value)),
        Encoded::Bytes(bytes) => {
            // Plain JSON only: after a byte stage (signing, compression) the bytes are not JSON.
            if stored.serializer_id == "json"
                && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes)
            {
                return out.json(&json);
            }
            let chunks = match stored.chunks {
                0 => String::new(),
                n => format!(", stored in {n} chunks"),
            };
            out.line(format!(
                "binary value: {} bytes, serializer {:?}{chunks}",
                bytes.len(),
                stored.serializer_id
            ))?;
            out.line(base64::engine::general_purpose::STANDARD.encode(&bytes))
        }
    }
}

/// `rm`: deletes each key; the keys that held no live value are named on stderr.
pub async fn rm(
    conn: &Connection,
    table: &str,
    namespace: &str,
    keys: &[String],
    out: &mut Output,
) -> CliResult {
    let map = conn.open_map(table, namespace).await?;
    for key in keys {
        layout::validate_key(key).map_err(|e| CliError::from(e).context(format!("key {key:?}")))?;
    }
    let mut removed = 0usize;
    for key in keys {
        if map.remove(key).await? {
            removed += 1;
        } else {
            eprintln!("not found: {key:?}");
        }
    }
    out.line(format!(
        "removed {removed} of {} key{}",
        keys.len(),
        if keys.len() == 1 { "" } else { "s" }
    ))
}

/// `clear`: deletes every value of the namespace, once confirmed.
pub async fn clear(
    conn: &Connection,
    table: &str,
    namespace: &str,
    yes: bool,
    out: &mut Output,
) -> CliResult {
    let map = conn.open_map(table, namespace).await?;
    if !yes {
        confirm(&format!(
            "Delete every value in namespace {namespace:?} of table {table:?}?"
        ))?;
    }
    map.clear().await?;
    out.line(format!(
        "cleared namespace {namespace:?} of table {table:?}"
    ))
}

/// Asks on the terminal; refuses when stdin is not one.
fn confirm(question: &str) -> CliResult {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::new(
            "refusing to clear without --yes: stdin is not a terminal to confirm on",
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::new(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(CliError::new("not confirmed; nothing was deleted"))
    }
}

/// `sweep`: runs the map's sweep and prints its report.
pub async fn sweep(conn: &Connection, table: &str, namespace: &str, out: &mut Output) -> CliResult {
    let map = conn.open_map(table, namespace).await?;
    let report = map.sweep().await?;
    out.line(format!(
        "reclaimed {} large value{}: {} items, {} bytes",
        report.generations,
        if report.generations == 1 { "" } else { "s" },
        report.items,
        report.bytes
    ))
}
