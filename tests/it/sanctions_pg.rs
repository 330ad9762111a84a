//! Bans, revocations and ends across nodes on one real PostgreSQL (`DATABASE_URL`; mandatory
//! in CI): a ban made through node A is enforced by node B within 2 s — refused at B's next
//! callback, and B's live listener dropped — and everything survives a restart.

use crate::hooks::revoke::{within, Recorder};
use crate::support;

use std::time::{Duration, Instant};

use support::pg::{admin_url, TempDb};
use support::{client, post_form, TestServer};

fn store_toml(url: &str) -> String {
    format!("[store]\nurl = \"{url}\"\n")
}

/// A `listener_add` from `ip` as client `id` on a public event; whether it was allowed.
async fn listener_add(server: &TestServer, event: &str, id: &str, ip: &str) -> bool {
    crate::hooks::listener_add(server, id, &format!("/{event}"), "", ip, None)
        .await
        .allowed
}

#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn a_ban_on_node_a_is_enforced_by_node_b_within_two_seconds() {
    let admin = admin_url();
    let db = TempDb::create(&admin).await;
    let a = TestServer::start(&store_toml(&db.url)).await;
    let b = TestServer::start(&store_toml(&db.url)).await;
    a.add_user("boss", "pw", true);
    let boss = a.login("boss", "pw").await;
    let event = a.create_event(&boss, "Shared show", false).await;
    let kicks = Recorder::on(&b);
    assert!(listener_add(&b, &event, "7", "203.0.113.5").await);
    assert!(listener_add(&b, &event, "8", "192.0.2.8").await);

    let (status, body) = post_form(
        &a.url("/jars/bans"),
        &[("auth", &boss), ("ip", "203.0.113.5")],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let banned = Instant::now();
    assert!(
        within(Duration::from_secs(2), || !kicks.listeners().is_empty()).await,
        "B did not drop its listener within 2 s"
    );
    assert_eq!(kicks.listeners(), [("7".to_string(), "banned")]);
    eprintln!(
        "B dropped the banned listener {:?} after the ban",
        banned.elapsed()
    );
    assert!(!listener_add(&b, &event, "9", "203.0.113.5").await);
    assert!(listener_add(&b, &event, "10", "192.0.2.10").await);

    // Ending the event on A: B drops its listeners too.
    let (status, _) = post_form(
        &a.url(&format!("/jars/events/{event}/end")),
        &[("auth", &boss)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        within(Duration::from_secs(2), || {
            kicks
                .listeners()
                .iter()
                .any(|(c, r)| c == "10" && *r == "event_expired")
        })
        .await,
        "{:?}",
        kicks.listeners()
    );
    a.stop().await;
    b.stop().await;

    // A restart: the ban is still listed and in force.
    let c = TestServer::start(&store_toml(&db.url)).await;
    c.add_user("boss", "pw", true);
    let boss = c.login("boss", "pw").await;
    let other = c.create_event(&boss, "Next show", false).await;
    assert!(!listener_add(&c, &other, "1", "203.0.113.5").await);
    assert!(listener_add(&c, &other, "2", "192.0.2.1").await);
    let bans: serde_json::Value = client()
        .get(c.url("/jars/bans"))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bans[0]["ip"], "203.0.113.5");
    c.stop().await;
}
