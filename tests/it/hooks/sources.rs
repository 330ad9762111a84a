//! Sources, metadata updates, trusted relays and the callback credentials.

use super::*;

#[tokio::test]
async fn sources_by_owner_or_admin_only_and_live_state() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Live show", false).await;
    let mount = format!("/{event}.mp3");

    let a = stream_auth(&s.server, &mount, "source", &s.other).await;
    assert!(!a.allowed);
    assert_eq!(
        a.message.as_deref(),
        Some("not the event's owner or an admin")
    );
    let a = stream_auth(&s.server, &mount, "source", "hackme").await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("invalid token"));
    let a = stream_auth(&s.server, "/live", "source", &s.owner).await;
    assert_eq!(a.message.as_deref(), Some("not an event mount"));

    let a = stream_auth(&s.server, &mount, "source", &s.owner).await;
    assert!(a.allowed && a.status == 200);
    mount_change(&s.server, "mount_add", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], true);
    assert_eq!(e["connected"], true);
    assert_eq!(e["connected_by"], s.owner_id);
    assert!(e["last_connected_at"].is_i64());

    mount_change(&s.server, "mount_remove", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], false);
    assert_eq!(e["connected"], false);
    assert_eq!(e["connected_by"], s.owner_id, "last connected user kept");
    assert!(e["last_disconnected_at"].is_i64());

    // An admin may take over; connected_by follows the last allowed source.
    assert!(
        stream_auth(&s.server, &mount, "source", &s.admin)
            .await
            .allowed
    );
    mount_change(&s.server, "mount_add", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["connected_by"], s.admin_id);
}

#[tokio::test]
async fn metadata_updates_need_credentials_and_tickets_cannot_broadcast() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Show", true).await;
    let mount = format!("/{event}");
    let admin_update = support::callback_body(&[
        ("action", "stream_auth"),
        ("mount", &mount),
        ("ip", "127.0.0.1"),
        ("server", "localhost"),
        ("port", "8000"),
        ("user", ""),
        ("pass", ""),
        ("admin", "1"),
    ]);
    let a = send(&s.server, admin_update).await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("no credentials"));
    let t = ticket(&s.server, &s.owner, &event, &[]).await;
    let a = stream_auth(&s.server, &mount, "source", &t).await;
    assert!(!a.allowed);
    assert_eq!(
        a.message.as_deref(),
        Some("a listener ticket cannot do this")
    );
    // Nor can a ticket be used as a user token on the API.
    let (status, body) = post_form(
        &s.server.url("/jars/connect"),
        &[("auth", t.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error_name(&body), "InvalidTokenError");
}

#[tokio::test]
async fn trusted_relay_only_right_after_connect() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Relayed", false).await;
    let mount = format!("/{event}");
    let a = stream_auth(&s.server, &mount, "relay", "relay-password").await;
    assert!(!a.allowed);
    assert_eq!(
        a.message.as_deref(),
        Some("relay not approved by /jars/connect")
    );
    let a = stream_auth(&s.server, &mount, "relay", "wrong-password").await;
    assert!(!a.allowed);

    let (status, _) = post_form(
        &s.server.url("/jars/connect"),
        &[("auth", s.owner.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        stream_auth(&s.server, &mount, "relay", "relay-password")
            .await
            .allowed
    );
    mount_change(&s.server, "mount_add", &mount).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], true);
    assert_eq!(
        e["connected_by"], s.owner_id,
        "the member /jars/connect approved"
    );
}

#[tokio::test]
async fn relay_window_expires() {
    let s = station_with_window("1s").await;
    let event = s.server.create_event(&s.owner, "Relayed", false).await;
    post_form(
        &s.server.url("/jars/connect"),
        &[("auth", s.owner.as_str()), ("mount", event.as_str())],
    )
    .await;
    s.server.clock.advance(std::time::Duration::from_secs(2));
    let a = stream_auth(&s.server, &format!("/{event}"), "relay", "relay-password").await;
    assert!(!a.allowed, "approval older than relay_window");
}

async fn station_with_window(window: &str) -> Station {
    let toml = CONFIG.replace(
        "password = \"cb-secret\"\n",
        &format!("password = \"cb-secret\"\nrelay_window = \"{window}\"\n"),
    );
    let server = TestServer::start(&toml).await;
    let owner_id = server.add_user("owner", "pw", false);
    server.add_user("other", "pw", false);
    let admin_id = server.add_user("admin", "pw", true);
    Station {
        owner: server.login("owner", "pw").await,
        other: server.login("other", "pw").await,
        admin: server.login("admin", "pw").await,
        server,
        owner_id,
        admin_id,
    }
}

#[tokio::test]
async fn callbacks_must_carry_the_configured_credentials() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Show", false).await;
    let b = support::callback_body(&[
        ("action", "stream_auth"),
        ("mount", &format!("/{event}")),
        ("ip", "127.0.0.1"),
        ("server", "localhost"),
        ("port", "8000"),
        ("user", "source"),
        ("pass", &s.owner),
    ]);
    let a = send_as(&s.server, Some(("icecast", "wrong")), b.clone()).await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("callback credentials wrong"));
    assert!(!send_as(&s.server, None, b.clone()).await.allowed);
    assert!(!send_as(&s.server, Some(("", "")), b.clone()).await.allowed);
    assert!(
        send_as(&s.server, Some((CALLBACK_USER, CALLBACK_PASS)), b)
            .await
            .allowed
    );
    // A forged mount_add changes nothing.
    let forged = support::callback_body(&[
        ("action", "mount_add"),
        ("mount", &format!("/{event}")),
        ("server", "x"),
        ("port", "1"),
    ]);
    send_as(&s.server, Some(("icecast", "wrong")), forged).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(e["live"], false);
}

#[tokio::test]
async fn malformed_callbacks_are_400_never_allow() {
    let s = station("").await;
    for b in [
        "",
        "mount=%2flive",
        "action=listener_fly&mount=%2flive",
        "action=listener_add&server=x&port=1&client=1",
        "action=stream_auth&mount=%ff%fe",
    ] {
        let a = send(&s.server, b.to_string()).await;
        assert_eq!(a.status, 400, "{b:?}");
        assert!(!a.allowed, "{b:?}");
    }
    // Icecast-KH escapes the action value: still understood.
    let event = s.server.create_event(&s.owner, "KH", false).await;
    let kh = format!("action=listener%5fadd&server=x&port=1&client=1&mount=%2f{event}&user=&pass=&ip=1%2e1%2e1%2e1");
    assert!(send(&s.server, kh).await.allowed);
}

#[tokio::test]
async fn going_live_and_stopping_are_logged_with_who_and_how_long() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Morning", false).await;
    let mount = format!("/{event}.mp3");
    let log = crate::logs::Captured::default();
    let _guard = log.start();
    assert!(
        stream_auth(&s.server, &mount, "source", &s.owner)
            .await
            .allowed
    );
    mount_change(&s.server, "mount_add", &mount).await;
    s.server.clock.advance(std::time::Duration::from_secs(95));
    mount_change(&s.server, "mount_remove", &mount).await;
    let text = log.text();
    let live = text
        .lines()
        .find(|l| l.contains("source went live"))
        .unwrap_or_else(|| panic!("no go-live line:\n{text}"));
    assert!(live.contains(&format!("event={event}")), "{live}");
    assert!(live.contains(&format!("member={}", s.owner_id)), "{live}");
    let stopped = text
        .lines()
        .find(|l| l.contains("source stopped"))
        .unwrap_or_else(|| panic!("no stop line:\n{text}"));
    assert!(stopped.contains("seconds=95"), "{stopped}");
    assert!(!text.contains(&s.owner), "the token is never logged");
}
