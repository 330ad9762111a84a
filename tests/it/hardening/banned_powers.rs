//! Issue 28, item 7: a banned member kept powers. After a station-wide ban, carol still minted
//! a listener ticket for her private event (which admitted a listener), created events and
//! minted source tickets. A ban now takes every power it covers at the API as well as at
//! Icecast: a station-wide ban all of them, a ban from one event those used on it.

use super::*;

struct Station {
    server: TestServer,
    admin: String,
    carol: String,
    carols: String,
    other: String,
}

async fn station() -> Station {
    let server = TestServer::start("").await;
    server.add_user("admin", "admin-password", true);
    server.add_user("carol", "carol-password", false);
    let admin = server.login("admin", "admin-password").await;
    let carol = server.login("carol", "carol-password").await;
    let carols = server.create_event(&carol, "Carol's", true).await;
    let other = server.create_event(&carol, "Carol's other", true).await;
    Station {
        server,
        admin,
        carol,
        carols,
        other,
    }
}

/// The statuses of carol's powers: create, connect, a listener ticket and a source ticket for
/// `event`, and whether her own token lets her listen to it.
async fn powers(s: &Station, event: &str) -> [u16; 5] {
    let url = |p: &str| s.server.url(p);
    let carol = s.carol.as_str();
    let create = post_form(
        &url("/jars/create"),
        &[
            ("auth", carol),
            ("title", "t"),
            ("description", "d"),
            ("private", "no"),
        ],
    )
    .await;
    let connect = post_form(&url("/jars/connect"), &[("auth", carol), ("mount", event)]).await;
    let ticket = post_form(&url("/jars/ticket"), &[("auth", carol), ("mount", event)]).await;
    let source = post_form(
        &url("/jars/ticket"),
        &[("auth", carol), ("mount", event), ("kind", "source")],
    )
    .await;
    for (status, body) in [&create, &connect, &ticket, &source] {
        if *status == 403 {
            assert_eq!(error_name(body), "UnauthorizedConnectionException");
        }
    }
    let listen = crate::support::callback_body(&[
        ("action", "listener_add"),
        ("server", "x"),
        ("port", "1"),
        ("client", "1"),
        ("mount", &format!("/{event}?token={carol}")),
        ("user", ""),
        ("pass", ""),
        ("ip", "192.0.2.1"),
    ]);
    let listen = if callback_allows(&s.server, listen).await {
        200
    } else {
        403
    };
    [create.0, connect.0, ticket.0, source.0, listen]
}

async fn ban(s: &Station, by: &str, form: &[(&str, &str)]) -> i64 {
    let mut form = form.to_vec();
    form.push(("auth", by));
    let (status, body) = post_form(&s.server.url("/jars/bans"), &form).await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn lift(s: &Station, by: &str, id: i64) -> u16 {
    client()
        .delete(s.server.url(&format!("/jars/bans/{id}")))
        .bearer_auth(by)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_station_wide_ban_takes_every_power() {
    let s = station().await;
    let free = [201, 202, 200, 200, 200];
    assert_eq!(powers(&s, &s.carols).await, free, "before the ban");
    let id = ban(&s, &s.admin, &[("member", "carol")]).await;
    assert_eq!(powers(&s, &s.carols).await, [403; 5]);
    assert_eq!(powers(&s, &s.other).await, [403; 5]);
    assert_eq!(lift(&s, &s.admin, id).await, 204);
    assert_eq!(powers(&s, &s.carols).await, free, "after the ban is lifted");
}

#[tokio::test]
async fn an_event_ban_takes_the_powers_over_that_event() {
    let s = station().await;
    ban(&s, &s.admin, &[("member", "carol"), ("event", &s.carols)]).await;
    let [create, connect, ticket, source, listen] = powers(&s, &s.carols).await;
    assert_eq!(create, 201, "creating is not a power over that event");
    assert_eq!([connect, ticket, source, listen], [403; 4]);
    assert_eq!(powers(&s, &s.other).await, [201, 202, 200, 200, 200]);
}

#[tokio::test]
async fn a_banned_admin_cannot_lift_their_own_ban() {
    let s = station().await;
    s.server.add_user("second", "second-password", true);
    let second = s.server.login("second", "second-password").await;
    let id = ban(&s, &second, &[("member", "admin")]).await;
    assert_eq!(lift(&s, &s.admin, id).await, 403);
    let (status, _) = post_form(
        &s.server.url("/jars/bans"),
        &[("auth", &s.admin), ("member", "second")],
    )
    .await;
    assert_eq!(status, 403, "nor ban the admin who banned them");
    assert_eq!(lift(&s, &second, id).await, 204);
}
