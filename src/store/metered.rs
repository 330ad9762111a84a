//! Counts failed store operations by operation (`jars_store_errors_total{op}`), wrapped
//! directly around the real store so only real failures count, not cache answers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Connect, ConnectRequest, Event, EventStore, ListFilter, NewEvent, StoreError};
use crate::metrics::Metrics;

pub struct MeteredStore {
    inner: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn EventStore>, metrics: Arc<Metrics>) -> MeteredStore {
        MeteredStore { inner, metrics }
    }

    fn count<T>(&self, op: &str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        // A value the store refused is the client's error, not the store's.
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.metrics.store_errors.with_label_values(&[op]).inc();
        }
        result
    }
}

#[async_trait::async_trait]
impl EventStore for MeteredStore {
    async fn create(&self, new: NewEvent) -> Result<Event, StoreError> {
        self.count("create", self.inner.create(new).await)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.count("get", self.inner.get(id).await)
    }

    async fn get_fresh(&self, id: Uuid) -> Result<Option<Event>, StoreError> {
        self.count("get", self.inner.get_fresh(id).await)
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<Event>, StoreError> {
        self.count("list", self.inner.list(filter).await)
    }

    async fn mark_connected(
        &self,
        id: Uuid,
        by: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.count(
            "mark_connected",
            self.inner.mark_connected(id, by, at).await,
        )
    }

    async fn connect(&self, request: ConnectRequest) -> Result<Connect, StoreError> {
        // The same write as a source's connect, checked in the same statement.
        self.count("mark_connected", self.inner.connect(request).await)
    }

    async fn mark_disconnected(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.count(
            "mark_disconnected",
            self.inner.mark_disconnected(id, at).await,
        )
    }

    async fn set_max_listeners(&self, id: Uuid, max: Option<u32>) -> Result<bool, StoreError> {
        self.count(
            "set_max_listeners",
            self.inner.set_max_listeners(id, max).await,
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.count("ping", self.inner.ping().await)
    }

    async fn last_known(&self, id: Uuid) -> Option<Event> {
        self.inner.last_known(id).await
    }
}
