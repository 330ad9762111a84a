//! Keeping a node's [`SanctionSet`] in step with the store ([`Loader::refresh`]): when the
//! version moved, only the rows written since are read and applied to the set in force; the
//! whole set is read at start, after a purge, and when the rows read do not account for every
//! version in between (a writer that stamps none, such as an older jars). And, once an hour,
//! the store's expired rows purged ([`PURGE_EVERY`]).

use std::sync::Arc;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::rules::sanctions::SanctionSet;
use crate::store::sanctions::{SanctionRows, SanctionStore};
use crate::store::StoreError;

/// How often a node deletes the store's expired sanctions (bans, revoked tickets, cut-offs of
/// ended events, old early ends).
pub const PURGE_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Loads changes into a set, and purges the store when due.
#[derive(Default)]
pub struct Loader {
    /// When this node last purged (or tried to).
    last_purge: Mutex<Option<DateTime<Utc>>>,
}

/// Whether `rows`, read as the changes after `since`, account for every version up to theirs:
/// each write stamps its version on a row it writes, so a version without a row was written by
/// something that stamps none, or its row was written again since. Either way, only a whole
/// load is sure.
fn accounts_for_every_version(rows: &SanctionRows, since: i64) -> bool {
    rows.complete || rows.versions_seen >= rows.version - since
}

impl Loader {
    /// Brings `set` to the store's version at `now`; true when it moved. Then purges the
    /// store's expired rows if one is due.
    pub async fn refresh(
        &self,
        store: &dyn SanctionStore,
        set: &ArcSwap<SanctionSet>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let changed = self.load(store, set, now).await?;
        self.purge_if_due(store, now).await;
        Ok(changed)
    }

    async fn load(
        &self,
        store: &dyn SanctionStore,
        set: &ArcSwap<SanctionSet>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let current = set.load_full();
        let version = store.version().await?;
        if version == current.version {
            return Ok(false);
        }
        let since = current.is_loaded().then_some(current.version);
        let mut rows = store.load(since, now).await?;
        if let Some(since) = since {
            if !accounts_for_every_version(&rows, since) {
                rows = store.load(None, now).await?;
            }
        }
        set.store(Arc::new(current.updated(&rows, now)));
        Ok(true)
    }

    async fn purge_if_due(&self, store: &dyn SanctionStore, now: DateTime<Utc>) {
        {
            let mut last = self.last_purge.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| now - at < PURGE_EVERY) {
                return;
            }
            *last = Some(now);
        }
        match store.purge(now).await {
            Ok(purged) if purged.total() > 0 => tracing::info!(
                bans = purged.bans,
                tickets = purged.tickets,
                cutoffs = purged.cutoffs,
                ends = purged.ends,
                "expired bans and revocations purged"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not purge expired bans and revocations")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_must_account_for_every_version() {
        let rows = |version, versions_seen, complete| SanctionRows {
            version,
            versions_seen,
            complete,
            ..SanctionRows::default()
        };
        assert!(accounts_for_every_version(&rows(7, 2, false), 5));
        assert!(!accounts_for_every_version(&rows(7, 1, false), 5));
        assert!(accounts_for_every_version(&rows(7, 0, true), 5));
    }
}
