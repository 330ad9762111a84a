//! Bans through a real jars server (issue 16): by address, range and member, everywhere or on
//! one event, refused at the next callback, live sessions dropped, expiring by themselves and
//! lifted; the API's answers and errors.

use std::time::Duration;

use serde_json::Value;

use super::revoke::{admitted, denied, post, within, Recorder};
use super::*;

/// A form's fields.
type Form<'a> = &'a [(&'a str, &'a str)];

async fn bans(server: &TestServer, token: &str) -> (u16, Value) {
    let resp = client()
        .get(server.url("/jars/bans"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn unban(server: &TestServer, token: &str, id: &str) -> (u16, String) {
    let resp = client()
        .delete(server.url(&format!("/jars/bans/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn bans_refuse_drop_expire_and_lift() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "public", false).await;
    let mount = format!("/{event}.mp3");
    assert!(admitted(s, "1", &mount, "203.0.113.9").await);
    assert!(admitted(s, "2", &mount, "192.0.2.1").await);
    assert!(admitted(s, "3", "/studio", "203.0.113.10").await);
    let (status, ban) = post(
        s,
        "/jars/bans",
        &[
            ("auth", &st.admin),
            ("ip", "203.0.113.0/24"),
            ("for", "90m"),
            ("reason", "ripping"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{ban}");
    assert_eq!(ban["ip"], "203.0.113.0/24");
    assert_eq!(ban["member"], Value::Null);
    assert_eq!(ban["member_name"], Value::Null);
    assert_eq!(ban["event"], Value::Null);
    assert_eq!(ban["reason"], "ripping");
    assert_eq!(ban["created_by"].as_i64(), Some(st.admin_id));
    let created = chrono::DateTime::parse_from_rfc3339(ban["created"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(ban["expires"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 90 * 60);
    // Live listeners of the range go, on event and static mounts alike; others stay.
    assert!(within(Duration::from_secs(2), || kicks.listeners().len() == 2).await);
    let mut kicked = kicks.listeners();
    kicked.sort();
    assert_eq!(kicked, [("1".into(), "banned"), ("3".into(), "banned")]);
    let refused = listener_add(s, "4", &mount, "", "203.0.113.200", None).await;
    assert_eq!(
        (refused.allowed, refused.message.as_deref()),
        (false, Some("banned"))
    );
    assert_eq!(denied(s, "listener_add", "banned"), 1);
    let (status, list) = bans(s, &st.admin).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    assert_eq!(list[0], ban);
    // The ban ends by itself.
    s.clock.advance(Duration::from_secs(90 * 60));
    assert!(admitted(s, "5", &mount, "203.0.113.200").await);
    assert_eq!(bans(s, &st.admin).await.1, serde_json::json!([]));
    // A ban until removed, lifted.
    let (_, ban) = post(
        s,
        "/jars/bans",
        &[("auth", &st.admin), ("ip", "::ffff:192.0.2.77")],
    )
    .await;
    assert_eq!(
        (ban["ip"].as_str(), &ban["expires"]),
        (Some("192.0.2.77"), &Value::Null)
    );
    assert!(!admitted(s, "6", &mount, "192.0.2.77").await);
    let id = ban["id"].to_string();
    assert_eq!(unban(s, &st.owner, &id).await.0, 403);
    assert_eq!(unban(s, &st.admin, &id).await.0, 204);
    assert!(admitted(s, "7", &mount, "192.0.2.77").await);
    let (status, body) = unban(s, &st.admin, &id).await;
    assert_eq!(
        (status, error_name(&body)),
        (404, "NoSuchBanException".to_string())
    );
    let (status, body) = unban(s, &st.admin, "x").await;
    assert_eq!(
        (status, error_name(&body)),
        (404, "NoSuchBanException".to_string())
    );
}

#[tokio::test]
async fn ban_arguments_and_permissions() {
    let st = station("").await;
    let s = &st.server;
    let cases: &[(Form<'_>, u16, &str)] = &[
        (&[("ip", "192.0.2.1")], 400, "MissingArgumentError"),
        (
            &[("auth", &st.owner), ("ip", "192.0.2.1")],
            403,
            "NoUserPermissionException",
        ),
        (&[("auth", &st.admin)], 400, "MissingArgumentError"),
        (
            &[("auth", &st.admin), ("ip", "radio.example")],
            400,
            "InvalidArgumentError",
        ),
        (
            &[("auth", &st.admin), ("ip", "192.0.2.0/40")],
            400,
            "InvalidArgumentError",
        ),
        (
            &[
                ("auth", &st.admin),
                ("ip", "192.0.2.1"),
                ("member", "owner"),
            ],
            400,
            "InvalidArgumentError",
        ),
        (
            &[("auth", &st.admin), ("member", "nobody")],
            400,
            "InvalidArgumentError",
        ),
        (
            &[("auth", &st.admin), ("ip", "192.0.2.1"), ("for", "soon")],
            400,
            "InvalidArgumentError",
        ),
        (
            &[("auth", &st.admin), ("ip", "192.0.2.1"), ("for", "0s")],
            400,
            "InvalidArgumentError",
        ),
        (
            &[("auth", &st.admin), ("ip", "192.0.2.1"), ("event", "nope")],
            400,
            "InvalidIdentifierException",
        ),
    ];
    for (form, status, name) in cases {
        let (got, body) = post(s, "/jars/bans", form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (*status, Some(*name)),
            "{form:?}"
        );
    }
    let missing = uuid::Uuid::new_v4().to_string();
    let (got, body) = post(
        s,
        "/jars/bans",
        &[
            ("auth", &st.admin),
            ("ip", "192.0.2.1"),
            ("event", &missing),
        ],
    )
    .await;
    assert_eq!(
        (got, body["error"].as_str()),
        (404, Some("NonExistentOrExpiredEventException"))
    );
    let long = "x".repeat(256);
    let (got, _) = post(
        s,
        "/jars/bans",
        &[("auth", &st.admin), ("ip", "192.0.2.1"), ("reason", &long)],
    )
    .await;
    assert_eq!(got, 400);
    assert_eq!(bans(s, &st.owner).await.0, 403);
    assert_eq!(bans(s, "garbage").await.0, 401);
    // A member by name or by id.
    let (got, ban) = post(s, "/jars/bans", &[("auth", &st.admin), ("member", "owner")]).await;
    assert_eq!(
        (got, ban["member"].as_i64(), ban["member_name"].as_str()),
        (201, Some(st.owner_id), Some("owner"))
    );
    let id = st.owner_id.to_string();
    let (_, ban) = post(s, "/jars/bans", &[("auth", &st.admin), ("member", &id)]).await;
    assert_eq!(ban["member_name"].as_str(), Some("owner"));
}

#[tokio::test]
async fn a_member_banned_from_an_event_cannot_broadcast_or_listen_there() {
    let st = station("").await;
    let s = &st.server;
    let kicks = Recorder::on(s);
    let event = s.create_event(&st.owner, "show", true).await;
    let elsewhere = s.create_event(&st.owner, "other show", false).await;
    let mount = format!("/{event}");
    assert!(stream_auth(s, &mount, "source", &st.owner).await.allowed);
    mount_change(s, "mount_add", &mount).await;
    assert!(admitted(s, "1", &format!("{mount}?token={}", st.owner), "192.0.2.1").await);
    let (status, _) = post(
        s,
        "/jars/bans",
        &[("auth", &st.admin), ("member", "owner"), ("event", &event)],
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        within(Duration::from_secs(2), || kicks.sources().len() == 1
            && kicks.listeners().len() == 1)
        .await
    );
    assert_eq!(kicks.sources(), [(mount.clone(), "banned")]);
    assert_eq!(kicks.listeners(), [("1".into(), "banned")]);
    let refused = stream_auth(s, &mount, "source", &st.owner).await;
    assert_eq!(
        (refused.allowed, refused.message.as_deref()),
        (false, Some("banned"))
    );
    let (status, body) = post_form(
        &s.url("/jars/connect"),
        &[("auth", &st.owner), ("mount", &event)],
    )
    .await;
    assert_eq!(
        (status, error_name(&body)),
        (403, "UnauthorizedConnectionException".into())
    );
    // Elsewhere they may.
    assert!(
        stream_auth(s, &format!("/{elsewhere}"), "source", &st.owner)
            .await
            .allowed
    );
}

#[tokio::test]
async fn a_relay_does_not_broadcast_for_a_banned_member() {
    let st = station("").await;
    let s = &st.server;
    let event = s.create_event(&st.owner, "relayed", false).await;
    let mount = format!("/{event}.mp3");
    let (status, _) = post_form(
        &s.url("/jars/connect"),
        &[("auth", &st.owner), ("mount", &event)],
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        stream_auth(s, &mount, "relay", "relay-password")
            .await
            .allowed
    );
    let (status, _) = post(
        s,
        "/jars/bans",
        &[("auth", &st.admin), ("member", "owner"), ("for", "1h")],
    )
    .await;
    assert_eq!(status, 201);
    // Still within the relay's approval window, but for a banned member.
    let refused = stream_auth(s, &mount, "relay", "relay-password").await;
    assert_eq!(
        (refused.allowed, refused.message.as_deref()),
        (false, Some("banned"))
    );
}

#[tokio::test]
async fn the_new_denial_reasons_start_at_zero() {
    let st = station("").await;
    let text = st.server.state.metrics.render();
    for series in [
        r#"jars_auth_decisions_total{action="listener_add",decision="deny",reason="banned"} 0"#,
        r#"jars_auth_decisions_total{action="listener_add",decision="deny",reason="revoked"} 0"#,
        r#"jars_auth_decisions_total{action="stream_auth",decision="deny",reason="banned"} 0"#,
        r#"jars_auth_decisions_total{action="stream_auth",decision="deny",reason="revoked"} 0"#,
        r#"jars_auth_decisions_total{action="connect",decision="deny",reason="banned"} 0"#,
    ] {
        assert!(text.contains(series), "{series} missing");
    }
}
