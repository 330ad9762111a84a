//! `jars migrate` on PostgreSQL: the embedded migration run whatever `[store] migrate` says,
//! and what it changed (columns added, tables created, grants given) in one line.

use super::{
    check_schema, explained, grants, run_migration, sanctions, table_columns, Failure,
    PostgresStore, MIGRATE_TIMEOUT,
};
use crate::config::PostgresSettings;
use crate::store::StoreError;

impl PostgresStore {
    /// Runs the migration whatever `migrate` says, and describes what changed.
    pub async fn migrate(settings: &PostgresSettings) -> Result<String, StoreError> {
        let store = Self::new(&PostgresSettings {
            migrate: true,
            ..settings.clone()
        })?;
        let pool = &store.inner.pool;
        let work = async {
            let before = table_columns(pool)
                .await
                .map_err(|e| explained(e, "reading jars.events' columns", true))?;
            let had_sanctions = sanctions::tables_exist(pool).await?;
            let ungranted = grants::roles_missing_grants(pool).await?;
            run_migration(pool).await?;
            check_schema(pool).await?;
            let after = table_columns(pool).await?;
            let still = grants::roles_missing_grants(pool).await?;
            let granted: Vec<String> = ungranted
                .into_iter()
                .filter(|r| !still.contains(r))
                .collect();
            Ok::<_, Failure>((before, after, had_sanctions, granted))
        };
        let (before, after, had_sanctions, granted) =
            match tokio::time::timeout(MIGRATE_TIMEOUT, work).await {
                Ok(Ok(columns)) => columns,
                Ok(Err(Failure::Other(m) | Failure::Invalid(m))) => {
                    return Err(store.inner.error(m))
                }
                Ok(Err(Failure::Unreachable(m))) => {
                    return Err(store.inner.error(store.diagnose(m).await))
                }
                Err(_) => {
                    return Err(store.inner.error(format!(
                        "no answer within {}",
                        humantime::format_duration(MIGRATE_TIMEOUT)
                    )))
                }
            };
        let label = &store.inner.label;
        let sanctions = if had_sanctions {
            ""
        } else {
            "; created jars.bans, jars.revoked_tickets, jars.ticket_cutoffs, jars.event_ends"
        };
        let events = if before.is_empty() {
            format!("{label}: created jars.events ({})", after.join(", "))
        } else {
            let added: Vec<&str> = after
                .iter()
                .filter(|c| !before.contains(c))
                .map(String::as_str)
                .collect();
            if added.is_empty() {
                format!("{label}: jars.events is up to date")
            } else {
                format!("{label}: added to jars.events: {}", added.join(", "))
            }
        };
        let grants = if granted.is_empty() {
            String::new()
        } else {
            format!("; granted jars' own tables to {}", granted.join(", "))
        };
        Ok(format!("{events}{sanctions}{grants}"))
    }

    /// Whether `table` (schema-qualified, e.g. `jars.listener_sessions`) exists, for `jars
    /// migrate` to tell a table it creates from one already there.
    pub async fn table_exists(
        settings: &PostgresSettings,
        table: &str,
    ) -> Result<bool, StoreError> {
        let store = Self::new(settings)?;
        let query = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&store.inner.pool);
        match tokio::time::timeout(MIGRATE_TIMEOUT, query).await {
            Ok(Ok(exists)) => Ok(exists),
            Ok(Err(e)) => match explained(e, "looking for tables", false) {
                Failure::Unreachable(m) | Failure::Other(m) | Failure::Invalid(m) => {
                    Err(store.inner.error(m))
                }
            },
            Err(_) => Err(store.inner.error("no answer".into())),
        }
    }
}
