//! The original's own deployment on PostgreSQL (issue 29 #1): `postgres` owns the tables and
//! runs `jars migrate`, jars serves as the role `jars`, which the original's schema file granted
//! `jars.events` alone. Every table the migration creates must be usable by that role, so bans
//! and revocations work; an install migrated before the grants existed gets them at its next
//! `jars migrate`.

use crate::postgres::{jars_cli, store_toml};
use crate::support;

use support::pg::{admin_url, as_original_role, load_original_schema, TempDb};
use support::{client, post_form, TestServer};

/// jars' own tables and sequences, and what the serving role needs on each.
const TABLES: [&str; 6] = [
    "jars.bans",
    "jars.revoked_tickets",
    "jars.ticket_cutoffs",
    "jars.event_ends",
    "jars.sanctions_version",
    "jars.listener_sessions",
];
const SEQUENCES: [&str; 2] = ["jars.bans_id_seq", "jars.listener_sessions_id_seq"];

/// The tables and sequences the role `jars` may not fully use.
async fn missing_grants(conn: &mut sqlx::PgConnection) -> Vec<String> {
    let mut missing = Vec::new();
    for table in TABLES {
        // Listed privileges are "any of"; each is needed.
        let ok: bool = sqlx::query_scalar(
            "SELECT bool_and(has_table_privilege('jars', $1, p)) \
             FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p",
        )
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        if !ok {
            missing.push(table.to_string());
        }
    }
    for sequence in SEQUENCES {
        let ok: bool = sqlx::query_scalar("SELECT has_sequence_privilege('jars', $1, 'USAGE')")
            .bind(sequence)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        if !ok {
            missing.push(sequence.to_string());
        }
    }
    missing
}

/// Whether a `listener_add` from `ip` on the public `event` is allowed.
async fn listener_from(server: &TestServer, event: &str, ip: &str) -> bool {
    crate::hooks::listener_add(server, "11", &format!("/{event}"), "", ip, None)
        .await
        .allowed
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn the_originals_role_bans_and_revokes_after_migrate_as_postgres() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let mut conn = db.connect().await;
    // 1. The original's schema file, as postgres.
    assert!(
        load_original_schema(&mut conn).await,
        "this test needs the role jars (the server must let postgres create it)"
    );
    // 2. `jars migrate` as postgres, the documented step.
    let (code, stdout, stderr) = jars_cli(&["migrate"], &db.url);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("created jars.bans"), "{stdout}");
    // A table it just made is said to be created, not up to date (issue 29 #13).
    assert!(
        stdout.contains("created jars.listener_sessions"),
        "{stdout}"
    );
    assert!(!stdout.contains("up to date"), "{stdout}");
    assert_eq!(missing_grants(&mut conn).await, Vec::<String>::new());

    // 3. Serve as the role jars.
    let url = as_original_role(&db.url);
    let server = TestServer::start(&store_toml(&url, "")).await;
    server.add_user("boss", "pw", true);
    let boss = server.login("boss", "pw").await;
    let event = server.create_event(&boss, "Breakfast", false).await;
    assert!(listener_from(&server, &event, "203.0.113.7").await);

    // A ban: written, listed, enforced on the next callback, lifted.
    let (status, body) = post_form(
        &server.url("/jars/bans"),
        &[
            ("auth", &boss),
            ("ip", "203.0.113.7"),
            ("reason", "ripping"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ban: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed: serde_json::Value = client()
        .get(server.url("/jars/bans"))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert!(!listener_from(&server, &event, "203.0.113.7").await);
    assert!(listener_from(&server, &event, "198.51.100.1").await);
    // A revocation of every ticket of the event.
    let (status, body) = post_form(
        &server.url("/jars/tickets/revoke"),
        &[("auth", &boss), ("mount", &event)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let status = client()
        .delete(server.url(&format!("/jars/bans/{}", ban["id"])))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    server.stop().await;

    // An install migrated before the grants existed: its tables lack them until the next
    // `jars migrate` as the owner, which grants what is missing and nothing else.
    for table in TABLES {
        sqlx::raw_sql(&format!("REVOKE ALL ON {table} FROM jars"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for sequence in SEQUENCES {
        sqlx::raw_sql(&format!("REVOKE ALL ON SEQUENCE {sequence} FROM jars"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(missing_grants(&mut conn).await.len(), 8);
    // Served as jars then, the store refuses to start rather than serve without sanctions, and
    // says what to do; jars may not grant itself anything.
    let (code, _, stderr) = jars_cli(&["migrate"], &url);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("may not use jars.bans") && stderr.contains("as their owner"),
        "{stderr}"
    );
    let (code, stdout, stderr) = jars_cli(&["migrate"], &db.url);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("granted"), "{stdout}");
    assert_eq!(missing_grants(&mut conn).await, Vec::<String>::new());
    // The role's own start-up migration finds nothing to do (it may grant nothing).
    let (code, stdout, stderr) = jars_cli(&["migrate"], &url);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("granted"), "{stdout}");
}
