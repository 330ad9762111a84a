//! Whether the roles that use `jars.events` may use jars' own tables too. In the original's
//! deployment `postgres` owns the tables and runs `jars migrate` while jars serves as `jars`;
//! the migration (`migrations/postgres/jars.sql`, its last step) grants every role that may
//! write `jars.events` what it needs on jars' tables. Here: what `jars migrate` reports it
//! granted, and the start-up check that the serving role has it.

use sqlx::PgPool;

use super::Failure;

/// jars' tables that every node reads and writes (bans, revocations, ends) whatever
/// `[sessions]` says.
const SANCTION_TABLES: &str = "{jars.bans,jars.revoked_tickets,jars.ticket_cutoffs,\
    jars.event_ends,jars.sanctions_version}";

/// Roles (other than its owner) that may write `jars.events` but lack a privilege jars needs
/// on one of its own tables or sequences, by name.
pub(super) async fn roles_missing_grants(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT a.grantee::regrole::text \
         FROM pg_class c, aclexplode(c.relacl) a \
         WHERE c.oid = to_regclass('jars.events') AND a.privilege_type = 'INSERT' \
           AND a.grantee <> 0 AND a.grantee <> c.relowner \
           AND (EXISTS (SELECT 1 FROM unnest($1::text[] || '{jars.listener_sessions}'::text[]) t, \
                        unnest('{SELECT,INSERT,UPDATE,DELETE}'::text[]) p \
                        WHERE to_regclass(t) IS NOT NULL \
                          AND NOT has_table_privilege(a.grantee, t, p)) \
             OR EXISTS (SELECT 1 FROM unnest('{jars.bans_id_seq,jars.listener_sessions_id_seq}'::text[]) s \
                        WHERE to_regclass(s) IS NOT NULL \
                          AND NOT has_sequence_privilege(a.grantee, s, 'USAGE'))) \
         ORDER BY 1",
    )
    .bind(SANCTION_TABLES)
    .fetch_all(pool)
    .await
}

/// Fails, saying what to do, when the connected role may not read and write jars' tables of
/// bans and revocations (which exist): otherwise every start would serve with sanctions that
/// cannot load, logging a permission error over and over.
pub(super) async fn check_own_tables(pool: &PgPool) -> Result<(), Failure> {
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT t FROM unnest($1::text[]) t \
         WHERE to_regclass(t) IS NOT NULL \
           AND EXISTS (SELECT 1 FROM unnest('{SELECT,INSERT,UPDATE,DELETE}'::text[]) p \
                       WHERE NOT has_table_privilege(t, p)) \
         ORDER BY 1",
    )
    .bind(SANCTION_TABLES)
    .fetch_all(pool)
    .await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::Other(format!(
        "the role may not use {}: run `jars migrate` as their owner (e.g. postgres), which grants \
         them to every role that may write jars.events",
        missing.join(", ")
    )))
}
