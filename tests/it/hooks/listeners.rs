//! Listeners on public, private and static mounts; tickets, their bindings and `/jars/ticket`.

use super::*;

#[tokio::test]
async fn public_and_private_listeners() {
    let s = station("").await;
    let public = s.server.create_event(&s.owner, "Public", false).await;
    let private = s.server.create_event(&s.owner, "Private", true).await;

    let a = listener_add(
        &s.server,
        "1",
        &format!("/{public}.mp3"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert!(a.allowed);
    let limit = a.timelimit.expect("event expiry bounds the session");
    assert!(limit > 9 * 86400 && limit <= 10 * 86400, "{limit}");

    let uri = format!("/{private}.ogg");
    let a = listener_add(&s.server, "2", &uri, "", "10.0.0.1", None).await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("private event: ticket required"));

    let t = ticket(&s.server, &s.owner, &private, &[("lifetime", "600")]).await;
    let a = listener_add(
        &s.server,
        "3",
        &format!("{uri}?token={t}&x=1"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert!(a.allowed, "{:?}", a.message);
    let limit = a.timelimit.unwrap();
    assert!((590..=600).contains(&limit), "{limit}");
    // The `jwt` parameter and the Basic password work too.
    assert!(
        listener_add(
            &s.server,
            "4",
            &format!("{uri}?jwt={t}"),
            "",
            "10.0.0.1",
            None
        )
        .await
        .allowed
    );
    assert!(
        listener_add(&s.server, "5", &uri, &t, "10.0.0.1", None)
            .await
            .allowed
    );
    // The owner's own user token opens a private event; another member's does not: a private
    // event is heard by its owner, admins and holders of a ticket for it.
    assert!(
        listener_add(
            &s.server,
            "6",
            &format!("{uri}?token={}", s.owner),
            "",
            "10.0.0.1",
            None
        )
        .await
        .allowed
    );
    let a = listener_add(
        &s.server,
        "6b",
        &format!("{uri}?token={}", s.other),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert!(!a.allowed);
    assert_eq!(a.message.as_deref(), Some("private event: ticket required"));

    let other_event = s.server.create_event(&s.owner, "Other", true).await;
    let a = listener_add(
        &s.server,
        "7",
        &format!("/{other_event}?token={t}"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("ticket for another event"));

    let a = listener_add(
        &s.server,
        "8",
        &format!("{uri}?token=garbage"),
        "",
        "10.0.0.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("invalid token"));

    let e = event_json(&s.server, &s.owner, &private).await;
    assert_eq!(e["listeners"], 4);
    assert_eq!(e["peak_listeners"], 4);
}

#[tokio::test]
async fn ticket_bindings_ip_referer_and_cap() {
    let s = station("").await;
    let private = s.server.create_event(&s.owner, "Private", true).await;
    let uri = format!("/{private}");

    let t = ticket(&s.server, &s.owner, &private, &[("ip", "192.0.2.7")]).await;
    let a = listener_add(
        &s.server,
        "1",
        &format!("{uri}?token={t}"),
        "",
        "192.0.2.8",
        None,
    )
    .await;
    assert_eq!(
        a.message.as_deref(),
        Some("ticket bound to another address")
    );
    assert!(
        listener_add(
            &s.server,
            "2",
            &format!("{uri}?token={t}"),
            "",
            "192.0.2.7",
            None
        )
        .await
        .allowed
    );

    let t = ticket(
        &s.server,
        &s.owner,
        &private,
        &[("referer", "https://radio.example/player")],
    )
    .await;
    let a = listener_add(
        &s.server,
        "3",
        &format!("{uri}?token={t}"),
        "",
        "1.1.1.1",
        Some("https://evil.example/"),
    )
    .await;
    assert_eq!(
        a.message.as_deref(),
        Some("referer not allowed for this ticket")
    );
    let a = listener_add(
        &s.server,
        "4",
        &format!("{uri}?token={t}"),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert!(!a.allowed);
    assert!(
        listener_add(
            &s.server,
            "5",
            &format!("{uri}?token={t}"),
            "",
            "1.1.1.1",
            Some("https://radio.example/player?x")
        )
        .await
        .allowed
    );

    let t = ticket(&s.server, &s.admin, &private, &[("max_listeners", "2")]).await;
    let with = format!("{uri}?token={t}");
    assert!(
        listener_add(&s.server, "10", &with, "", "1.1.1.1", None)
            .await
            .allowed
    );
    assert!(
        listener_add(&s.server, "11", &with, "", "1.1.1.2", None)
            .await
            .allowed
    );
    let a = listener_add(&s.server, "12", &with, "", "1.1.1.3", None).await;
    assert_eq!(
        a.message.as_deref(),
        Some("ticket already has its maximum listeners")
    );
    listener_remove(&s.server, "10", &with).await;
    assert!(
        listener_add(&s.server, "12", &with, "", "1.1.1.3", None)
            .await
            .allowed
    );
}

#[tokio::test]
async fn expired_ticket_is_refused() {
    let s = station("[tokens]\nleeway = \"0s\"").await;
    let private = s.server.create_event(&s.owner, "Private", true).await;
    let t = ticket(&s.server, &s.owner, &private, &[("lifetime", "1")]).await;
    s.server.clock.advance(std::time::Duration::from_secs(1));
    let a = listener_add(
        &s.server,
        "1",
        &format!("/{private}?token={t}"),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("ticket or token expired"));
}

#[tokio::test]
async fn listener_counts_and_unknown_sessions() {
    let s = station("").await;
    let event = s.server.create_event(&s.owner, "Counted", false).await;
    let uri = format!("/{event}");
    assert!(
        listener_add(&s.server, "1", &uri, "", "1.1.1.1", None)
            .await
            .allowed
    );
    assert!(
        listener_add(&s.server, "2", &uri, "", "1.1.1.2", None)
            .await
            .allowed
    );
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(
        (e["listeners"].as_u64(), e["peak_listeners"].as_u64()),
        (Some(2), Some(2))
    );
    listener_remove(&s.server, "1", &uri).await;
    listener_remove(&s.server, "2", &uri).await;
    // Unknown (e.g. from before a restart) and repeated removes are ignored.
    listener_remove(&s.server, "2", &uri).await;
    listener_remove(&s.server, "99", &uri).await;
    let e = event_json(&s.server, &s.owner, &event).await;
    assert_eq!(
        (e["listeners"].as_u64(), e["peak_listeners"].as_u64()),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn static_mounts() {
    let s = station("").await;
    assert!(
        listener_add(&s.server, "1", "/studio", "", "1.1.1.1", None)
            .await
            .allowed
    );
    let a = listener_add(&s.server, "2", "/members", "", "1.1.1.1", None).await;
    assert_eq!(a.message.as_deref(), Some("members only"));
    let a = listener_add(
        &s.server,
        "3",
        &format!("/members?token={}", s.other),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert!(a.allowed);
    assert!(a.timelimit.unwrap() <= 86400);
    let a = listener_add(
        &s.server,
        "4",
        &format!("/staff?token={}", s.other),
        "",
        "1.1.1.1",
        None,
    )
    .await;
    assert_eq!(a.message.as_deref(), Some("admins only"));
    assert!(
        listener_add(&s.server, "5", "/staff", &s.admin, "1.1.1.1", None)
            .await
            .allowed
    );
    let a = listener_add(&s.server, "6", "/elsewhere", "", "1.1.1.1", None).await;
    assert_eq!(a.message.as_deref(), Some("not an event mount"));
    // Sources on static mounts: admins and relays.
    assert!(
        !stream_auth(&s.server, "/studio", "source", &s.owner)
            .await
            .allowed
    );
    assert!(
        stream_auth(&s.server, "/studio", "source", &s.admin)
            .await
            .allowed
    );
    assert!(
        stream_auth(&s.server, "/studio", "relay", "relay-password")
            .await
            .allowed
    );
}

#[tokio::test]
async fn ticket_api_rules() {
    let s = station("[events]\nlifetime = \"1h\"").await;
    let event = s.server.create_event(&s.owner, "Show", true).await;
    let (status, body) = post_form(
        &s.server.url("/jars/ticket"),
        &[("auth", s.other.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(error_name(&body), "UnauthorizedConnectionException");
    // Capped by the event's remaining life (1 h), whatever is asked for.
    let (status, body) = post_form(
        &s.server.url("/jars/ticket"),
        &[
            ("auth", s.owner.as_str()),
            ("mount", event.as_str()),
            ("lifetime", "86400"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let left = v["expires"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(left <= 3600 && left > 3500, "{left}");
    for (k, v) in [
        ("ip", "not-an-ip"),
        ("lifetime", "-5"),
        ("max_listeners", "0"),
    ] {
        let (status, body) = post_form(
            &s.server.url("/jars/ticket"),
            &[
                ("auth", s.owner.as_str()),
                ("mount", event.as_str()),
                (k, v),
            ],
        )
        .await;
        assert_eq!(status, 400, "{k}={v}");
        assert_eq!(error_name(&body), "InvalidArgumentError");
    }
    let (status, _) = post_form(
        &s.server.url("/jars/ticket"),
        &[
            ("auth", s.owner.as_str()),
            ("mount", &uuid::Uuid::new_v4().to_string()),
        ],
    )
    .await;
    assert_eq!(status, 404);
}
