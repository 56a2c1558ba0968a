//! Single-item requests: `GetItem`, `PutItem` and `DeleteItem`, with optional conditions.
//!
//! Writes come in two kinds. The plain ones use the SDK's retries. The `_watched` ones are
//! retried here, one attempt at a time, and say whether an earlier attempt failed with an
//! unknown outcome ([`Sent::doubt`]): `insert` and `pop` return the previous value, and must
//! not report their own earlier effect as it.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::Engine;
use crate::Result;
use crate::engine::batch::backoff;
use crate::error::{sdk_error, sdk_failure};
use crate::layout::Item;

/// A condition expression with the names and values it refers to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Condition {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Condition {
    pub(crate) fn new(expression: impl Into<String>) -> Self {
        Condition {
            expression: expression.into(),
            ..Condition::default()
        }
    }

    /// Binds `#placeholder` to an attribute name.
    pub(crate) fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names
            .insert(placeholder.to_owned(), attribute.to_owned());
        self
    }

    /// Binds `:placeholder` to a value.
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// What a write did.
#[derive(Debug)]
pub(crate) enum Written {
    /// Applied. The item it replaced or deleted, when asked for and there was one.
    Applied(Option<Item>),
    /// The condition failed. The item that failed it, when the server returned it (DynamoDB
    /// does; some compatible servers do not).
    Refused(Option<Item>),
}

/// Adds `condition` (an `Option<&Condition>`) to a `PutItem` or `DeleteItem` request, asking for
/// the item that fails it (the two SDK builders share no trait).
macro_rules! conditioned {
    ($request:expr, $condition:expr) => {
        match $condition {
            Some(condition) => $request
                .condition_expression(&condition.expression)
                .set_expression_attribute_names(condition.names())
                .set_expression_attribute_values(condition.values())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                ),
            None => $request,
        }
    };
}

fn return_values(return_old: bool) -> ReturnValue {
    if return_old {
        ReturnValue::AllOld
    } else {
        ReturnValue::None
    }
}

/// The answer to a write retried by [`Engine::put_item_watched`] or
/// [`Engine::delete_item_watched`].
#[derive(Debug)]
pub(crate) struct Sent {
    pub written: Written,
    /// Set when an earlier attempt failed with an unknown outcome (its error): it may have
    /// been applied too, so an answer that depends on the item's previous state (the item
    /// returned, a refusal) may describe this write's own earlier effect.
    pub doubt: Option<crate::Error>,
}

fn refused_put(err: &SdkError<PutItemError, HttpResponse>) -> Option<Option<Item>> {
    match err.as_service_error()? {
        PutItemError::ConditionalCheckFailedException(e) => Some(e.item.clone()),
        _ => None,
    }
}

fn refused_delete(err: &SdkError<DeleteItemError, HttpResponse>) -> Option<Option<Item>> {
    match err.as_service_error()? {
        DeleteItemError::ConditionalCheckFailedException(e) => Some(e.item.clone()),
        _ => None,
    }
}

impl Engine {
    /// Reads one item by primary key, optionally only some attributes.
    pub(crate) async fn get_item(
        &self,
        key: Item,
        consistent: bool,
        attributes: Option<&[&str]>,
    ) -> Result<Option<Item>> {
        let mut request = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(consistent);
        if let Some(attributes) = attributes {
            let mut placeholders = Vec::with_capacity(attributes.len());
            for (i, attribute) in attributes.iter().enumerate() {
                let placeholder = format!("#a{i}");
                request = request.expression_attribute_names(&placeholder, *attribute);
                placeholders.push(placeholder);
            }
            request = request.projection_expression(placeholders.join(", "));
        }
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error(e, self.table(), &self.connection.endpoint))?;
        Ok(out.item)
    }

    fn put_request(
        &self,
        client: &Client,
        item: Item,
        condition: Option<&Condition>,
        return_old: bool,
    ) -> PutItemFluentBuilder {
        let request = client
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .return_values(return_values(return_old));
        conditioned!(request, condition)
    }

    /// Writes an item (SDK retries on).
    pub(crate) async fn put_item(
        &self,
        item: Item,
        condition: Option<&Condition>,
        return_old: bool,
    ) -> Result<Written> {
        match self
            .put_request(self.client(), item, condition, return_old)
            .send()
            .await
        {
            Ok(out) => Ok(Written::Applied(out.attributes)),
            Err(err) => match refused_put(&err) {
                Some(item) => Ok(Written::Refused(item)),
                None => Err(sdk_error(err, self.table(), &self.connection.endpoint)),
            },
        }
    }

    fn delete_request(
        &self,
        client: &Client,
        key: Item,
        condition: Option<&Condition>,
        return_old: bool,
    ) -> DeleteItemFluentBuilder {
        let request = client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key))
            .return_values(return_values(return_old));
        conditioned!(request, condition)
    }

    /// Writes an item, retried here rather than by the SDK so that the caller learns whether
    /// an earlier attempt may have been applied too (see [`Sent`]).
    pub(crate) async fn put_item_watched(
        &self,
        item: &Item,
        condition: Option<&Condition>,
    ) -> Result<Sent> {
        self.watched(
            || {
                self.put_request(self.connection.client_once(), item.clone(), condition, true)
                    .send()
            },
            |out| out.attributes,
            refused_put,
        )
        .await
    }

    /// Deletes an item returning it, retried here like
    /// [`put_item_watched`](Self::put_item_watched).
    pub(crate) async fn delete_item_watched(
        &self,
        key: &Item,
        condition: Option<&Condition>,
    ) -> Result<Sent> {
        self.watched(
            || {
                self.delete_request(self.connection.client_once(), key.clone(), condition, true)
                    .send()
            },
            |out| out.attributes,
            refused_delete,
        )
        .await
    }

    /// Sends single attempts until one is answered (or a definite error, or the attempts run
    /// out), backing off in between.
    async fn watched<O, E, F, Fut>(
        &self,
        mut send: F,
        old: fn(O) -> Option<Item>,
        refused: fn(&SdkError<E, HttpResponse>) -> Option<Option<Item>>,
    ) -> Result<Sent>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<O, SdkError<E, HttpResponse>>>,
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        let mut doubt = None;
        let mut last = None;
        for attempt in 1..=self.connection.max_attempts {
            if attempt > 1 {
                self.connection.counters.retried();
                tracing::debug!(
                    target: "dynamodict",
                    attempt,
                    "retrying a write after a failed attempt (its outcome is checked)"
                );
                tokio::time::sleep(backoff(&self.batch, attempt - 1)).await;
            }
            let written = match send().await {
                Ok(out) => Written::Applied(old(out)),
                Err(err) => match refused(&err) {
                    Some(item) => Written::Refused(item),
                    None => {
                        let failed = sdk_failure(err, self.table(), &self.connection.endpoint);
                        if !failed.retryable {
                            return Err(failed.error);
                        }
                        if failed.ambiguous && doubt.is_none() {
                            doubt = Some(failed.error);
                        } else {
                            last = Some(failed.error);
                        }
                        continue;
                    }
                },
            };
            return Ok(Sent { written, doubt });
        }
        Err(last
            .or(doubt)
            .unwrap_or(crate::Error::Timeout { timeout: None }))
    }

    /// Deletes an item (SDK retries on).
    pub(crate) async fn delete_item(
        &self,
        key: Item,
        condition: Option<&Condition>,
        return_old: bool,
    ) -> Result<Written> {
        match self
            .delete_request(self.client(), key, condition, return_old)
            .send()
            .await
        {
            Ok(out) => Ok(Written::Applied(out.attributes)),
            Err(err) => match refused_delete(&err) {
                Some(item) => Ok(Written::Refused(item)),
                None => Err(sdk_error(err, self.table(), &self.connection.endpoint)),
            },
        }
    }
}
