//! Unit tests of the PostgreSQL store's error mapping (no database needed).

use super::*;

#[test]
fn connectivity_errors_are_told_apart() {
    assert!(unreachable(&sqlx::Error::PoolTimedOut));
    assert!(unreachable(&sqlx::Error::Io(std::io::Error::from(
        std::io::ErrorKind::ConnectionRefused
    ))));
    assert!(!unreachable(&sqlx::Error::RowNotFound));
    assert!(!unreachable(&sqlx::Error::ColumnNotFound("x".into())));
}

#[test]
fn migration_names_only_schema_qualified_objects() {
    // Every statement must work whatever the search_path is.
    for word in ["CREATE TABLE IF NOT EXISTS", "ALTER TABLE"] {
        for (i, _) in MIGRATION.match_indices(word) {
            let rest = &MIGRATION[i + word.len()..];
            assert!(
                rest.trim_start().starts_with("jars."),
                "{word}…: {rest:.40}"
            );
        }
    }
}

#[tokio::test]
async fn a_closed_port_fails_fast_and_tolerantly() {
    // Nothing listens on port 1 of the loopback address.
    let settings = PostgresSettings::new("postgres://postgres:secret@127.0.0.1:1/none");
    let started = std::time::Instant::now();
    let e = PostgresStore::open(&settings).await.err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!e.to_string().contains("secret"), "{e}");
    let store = PostgresStore::open_tolerant(&settings).await.unwrap();
    let started = std::time::Instant::now();
    assert!(store.get(Uuid::new_v4()).await.is_err());
    assert!(store.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_millis(500), "not fast");
}
