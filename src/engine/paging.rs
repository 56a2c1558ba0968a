//! Queries over one partition, page by page (DynamoDB caps a page at 1 MB), and a [`Pager`]
//! that reads a page from several partitions at a time.

use std::collections::VecDeque;
use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures_util::future::try_join_all;

use super::Engine;
use crate::Result;
use crate::error::sdk_error;
use crate::item;
use crate::layout::{Item, PK, SK};

/// What a query returns of each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Projection {
    /// Only the count.
    Count,
    /// The primary key.
    Keys,
    /// These attributes (the primary key is always included).
    Attributes(&'static [&'static str]),
    /// Whole items.
    All,
}

/// One query over one partition.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub partition: String,
    /// Only sort keys before this one.
    pub sort_key_before: Option<String>,
    pub projection: Projection,
    /// Leave out expired items (a server-side filter; needs the layout's expiry attribute).
    pub live_only: bool,
    /// Strongly consistent.
    pub consistent: bool,
}

/// One page: the items, where the next page starts, and the count of matching items.
pub(crate) struct Page {
    pub items: Vec<Item>,
    pub next: Option<Item>,
    pub count: usize,
}

impl Engine {
    /// A query over one of this namespace's partitions, with the map's read consistency.
    pub(crate) fn query(
        &self,
        partition: String,
        projection: Projection,
        live_only: bool,
    ) -> Query {
        Query {
            partition,
            sort_key_before: None,
            projection,
            live_only,
            consistent: self.consistent_reads,
        }
    }

    /// Reads one page of `query`, starting after `start`.
    pub(crate) async fn query_page(&self, query: &Query, start: Option<Item>) -> Result<Page> {
        let mut condition = "#pk = :pk".to_owned();
        let mut request = self
            .client()
            .query()
            .table_name(self.table())
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", AttributeValue::S(query.partition.clone()))
            .consistent_read(query.consistent)
            .set_exclusive_start_key(start);
        if let Some(before) = &query.sort_key_before {
            condition.push_str(" AND #sk < :before");
            request = request
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":before", AttributeValue::S(before.clone()));
        }
        request = request.key_condition_expression(condition);
        if query.live_only
            && let Some(attribute) = &self.layout.ttl_attribute
        {
            request = request
                .expression_attribute_names("#t", attribute)
                .filter_expression(item::LIVE);
            for (placeholder, value) in item::expiry_values() {
                request = request.expression_attribute_values(placeholder, value);
            }
        }
        request = match query.projection {
            Projection::Count => request.select(Select::Count),
            Projection::Keys => request
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#sk", SK),
            Projection::Attributes(attributes) => {
                let mut expression = "#pk, #sk".to_owned();
                for (i, attribute) in attributes.iter().enumerate() {
                    expression.push_str(&format!(", #p{i}"));
                    request = request.expression_attribute_names(format!("#p{i}"), *attribute);
                }
                request
                    .projection_expression(expression)
                    .expression_attribute_names("#sk", SK)
            }
            Projection::All => request,
        };
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error(e, self.table(), &self.connection.endpoint))?;
        Ok(Page {
            count: usize::try_from(out.count).unwrap_or(0),
            items: out.items.unwrap_or_default(),
            next: out.last_evaluated_key,
        })
    }

    /// Every page of `query`, handed to `each` as it arrives.
    pub(crate) async fn for_each_page<F, Fut>(&self, query: Query, mut each: F) -> Result<()>
    where
        F: FnMut(Page) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut start = None;
        loop {
            let page = self.query_page(&query, start).await?;
            let next = page.next.clone();
            each(page).await?;
            match next {
                Some(next) => start = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// Pages through several queries, a page from up to
/// [`BatchOptions::concurrency`](crate::BatchOptions) of them at a time, so memory stays
/// bounded by that many pages.
pub(crate) struct Pager {
    engine: Engine,
    queries: VecDeque<(Query, Option<Item>)>,
    buffer: VecDeque<Item>,
    failed: bool,
}

impl Pager {
    pub(crate) fn new(engine: Engine, queries: Vec<Query>) -> Self {
        Pager {
            engine,
            queries: queries.into_iter().map(|q| (q, None)).collect(),
            buffer: VecDeque::new(),
            failed: false,
        }
    }

    /// The next item, or the error of a failed request (after which the pager ends).
    pub(crate) async fn next_item(&mut self) -> Option<Result<Item>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Some(Ok(item));
            }
            if self.failed || self.queries.is_empty() {
                return None;
            }
            if let Err(err) = self.fetch().await {
                self.failed = true;
                return Some(Err(err));
            }
        }
    }

    async fn fetch(&mut self) -> Result<()> {
        self.engine.ready().await?;
        let n = self.queries.len().min(self.engine.batch.concurrency);
        let engine = &self.engine;
        let requests = self
            .queries
            .iter()
            .take(n)
            .map(|(query, start)| engine.query_page(query, start.clone()));
        let pages = try_join_all(requests).await?;
        let fetched: Vec<(Query, Option<Item>)> = self.queries.drain(..n).collect();
        for ((query, _), page) in fetched.into_iter().zip(pages) {
            self.buffer.extend(page.items);
            if let Some(next) = page.next {
                self.queries.push_back((query, Some(next)));
            }
        }
        Ok(())
    }
}
