//! The garbage collector: reclaims the generations no manifest references.
//!
//! A sweep reads only the namespace's record partitions (`<namespace>#<shard>#g`), and of
//! them only the records older than the grace period (one key condition, `sk < t<cutoff>`):
//! about a hundred bytes per large value, never the chunk data. It reads the manifests of
//! their keys consistently (`BatchGetItem`, projected to the generation), and for each record
//! whose key no longer refers to it, deletes its chunks, then the record (so a sweep that is
//! interrupted leaves the record, and the next one finishes the job).
//!
//! Deleting an unreferenced generation older than the grace period is safe: no write of it can
//! still arrive, since a manifest is only ever sent within the first half of the grace period
//! after its generation was created (see [`super::write`]).

use std::collections::HashSet;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::Store;
use super::chunked::{self, Record, chunk_keys, created_before};
use crate::Result;
use crate::engine::batch::{self, Write};
use crate::engine::paging::{Projection, Query};
use crate::item::now_secs;
use crate::layout::{PK, SK};

/// What a sweep reclaimed.
///
/// ```
/// let report = dynamodict::SweepReport::default();
/// assert_eq!(report.generations, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Large values (generations) reclaimed.
    pub generations: u64,
    /// Items deleted: chunks and records.
    pub items: u64,
    /// Bytes of value data reclaimed.
    pub bytes: u64,
}

impl SweepReport {
    fn add(&mut self, other: SweepReport) {
        self.generations += other.generations;
        self.items += other.items;
        self.bytes += other.bytes;
    }
}

impl Store {
    /// Reclaims every generation of the namespace that is older than the grace period and
    /// that no manifest references.
    pub(crate) async fn sweep(&self) -> Result<SweepReport> {
        let cutoff =
            created_before(now_secs().saturating_sub(self.grace.as_secs().saturating_add(1)));
        let engine = &self.engine;
        let per_shard = (0..engine.layout.shards).map(|shard| {
            let query = Query {
                partition: engine.layout.record_partition(shard),
                sort_key_before: Some(cutoff.clone()),
                projection: Projection::Attributes(&[
                    chunked::KEY,
                    chunked::COUNT,
                    chunked::LENGTH,
                ]),
                live_only: false,
                consistent: true,
            };
            async move {
                let report = std::sync::Mutex::new(SweepReport::default());
                engine
                    .for_each_page(query, |page| {
                        let report = &report;
                        async move {
                            let records = page.items.iter().filter_map(Record::from_item).collect();
                            let reclaimed = self.sweep_records(records).await?;
                            super::lock(report).add(reclaimed);
                            Ok(())
                        }
                    })
                    .await?;
                Ok::<_, crate::Error>(report.into_inner().unwrap_or_else(|e| e.into_inner()))
            }
        });
        let reports: Vec<SweepReport> = stream::iter(per_shard)
            .buffer_unordered(engine.batch.concurrency)
            .try_collect()
            .await?;
        let mut total = SweepReport::default();
        for report in reports {
            total.add(report);
        }
        engine.connection.counters.chunks_swept(total.items);
        tracing::info!(
            target: "dynamodict",
            table = %engine.layout.table,
            namespace = %engine.layout.namespace,
            generations = total.generations,
            items = total.items,
            bytes = total.bytes,
            "swept unreferenced large values"
        );
        Ok(total)
    }

    /// Reclaims those of `records` that their key's manifest no longer refers to.
    async fn sweep_records(&self, records: Vec<Record>) -> Result<SweepReport> {
        if records.is_empty() {
            return Ok(SweepReport::default());
        }
        let layout = &self.engine.layout;
        // A record naming a key no map can have (foreign or damaged data) is referenced by no
        // manifest; asking for it would only fail the whole read.
        let keys: HashSet<&str> = records
            .iter()
            .map(|r| r.key.as_str())
            .filter(|k| crate::layout::validate_key(k).is_ok())
            .collect();
        let current = batch::get_items(
            &self.engine,
            keys.into_iter().map(|k| layout.item_key(k)).collect(),
            true,
            Some((
                "#pk, #sk, #g",
                &[("#pk", PK), ("#sk", SK), ("#g", chunked::GENERATION)],
            )),
        )
        .await?;
        let garbage = records
            .into_iter()
            .filter(|r| {
                let referenced = current
                    .get(&r.key)
                    .and_then(|item| item.get(chunked::GENERATION))
                    .and_then(|g| g.as_s().ok());
                referenced != Some(&r.generation)
            })
            .collect();
        self.reclaim(garbage).await
    }

    /// Deletes the chunks of unreferenced generations, then their records.
    pub(crate) async fn reclaim(&self, records: Vec<Record>) -> Result<SweepReport> {
        let layout = &self.engine.layout;
        let mut seen = HashSet::new();
        let records: Vec<Record> = records
            .into_iter()
            .filter(|r| seen.insert((r.key.clone(), r.generation.clone())))
            .collect();
        if records.is_empty() {
            return Ok(SweepReport::default());
        }
        let chunks: Vec<Write> = records
            .iter()
            .flat_map(|r| chunk_keys(layout, &r.key, &r.generation, r.count))
            .map(Write::Delete)
            .collect();
        let report = SweepReport {
            generations: records.len() as u64,
            items: (chunks.len() + records.len()) as u64,
            bytes: records.iter().map(|r| r.length).sum(),
        };
        batch::write_all(&self.engine, chunks).await?;
        let record_deletes = records
            .iter()
            .map(|r| Write::Delete(r.location(layout)))
            .collect();
        batch::write_all(&self.engine, record_deletes).await?;
        Ok(report)
    }
}
