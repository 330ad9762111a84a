//! A member, or anybody, using the API as a lever (issue 12 items 4 and 6), reproduced at
//! bounded scale on 127.0.0.1: an event flood then made every anonymous listing huge; ticket
//! minting had no limit and no bound on what each ticket weighed.

use crate::support;

use std::collections::HashSet;
use std::time::Duration;

use jars::clock::Clock;
use jars::store::NewEvent;
use serde_json::Value;
use support::{client, error_name, post_form, refused_as_too_many, TestServer};

/// Writes `n` public events of member `by` straight into the store: the flood, without
/// waiting on `/jars/create`'s limit.
async fn flood(server: &TestServer, by: i64, n: usize) {
    for i in 0..n {
        server
            .state
            .store
            .create(NewEvent {
                created_by: by,
                title: format!("flood {i}"),
                description: "d".repeat(255),
                private: false,
                lifetime: Duration::from_secs(3600),
                now: server.clock.now(),
                max_listeners: None,
            })
            .await
            .unwrap();
    }
}

/// `GET path`: status, `X-Next-Cursor`, the body's length in bytes and the listed ids.
async fn list(
    server: &TestServer,
    path: &str,
) -> (u16, Option<String>, Option<String>, usize, Vec<String>) {
    let resp = client().get(server.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (next, link) = (header("x-next-cursor"), header("link"));
    let body = resp.text().await.unwrap();
    let ids = match serde_json::from_str::<Value>(&body).unwrap() {
        Value::Array(events) => events
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect(),
        _ => Vec::new(),
    };
    (status, next, link, body.len(), ids)
}

#[tokio::test]
async fn an_event_flood_no_longer_makes_every_anonymous_listing_huge() {
    let server = TestServer::start("").await;
    flood(&server, 1, 1_250).await;

    // Anonymous, no arguments: the first 100, and where the rest starts.
    let (status, next, link, bytes, first) = list(&server, "/jars/events").await;
    // The flood shares one creation time (the test clock stands still): pages part by id.
    assert_eq!(status, 200);
    assert_eq!(first.len(), 100);
    assert!(bytes < 100 * 1024, "a default page is {bytes} bytes");
    let next = next.expect("X-Next-Cursor");
    assert_eq!(
        link.as_deref(),
        Some(format!("</jars/events?limit=100&after={next}>; rel=\"next\"").as_str())
    );

    // Following the cursor reads every event exactly once, never more than 1,000 at a time.
    let mut seen: Vec<String> = first;
    let mut after = Some(next);
    let mut pages = 1;
    while let Some(cursor) = after {
        let (status, next, _, bytes, ids) =
            list(&server, &format!("/jars/events?limit=1000&after={cursor}")).await;
        assert_eq!(status, 200);
        assert!(
            ids.len() <= 1000 && bytes < 1000 * 1024,
            "{} events, {bytes} bytes",
            ids.len()
        );
        seen.extend(ids);
        after = next;
        pages += 1;
    }
    assert_eq!(pages, 3, "100, then 1,000, then the last 150");
    assert_eq!(seen.len(), 1_250);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        1_250,
        "no repeats"
    );

    // More than a page may hold, no page at all, or a cursor jars never made: 400.
    for query in [
        "limit=1001",
        "limit=0",
        "limit=-1",
        "limit=many",
        "after=bm90LWEtY3Vyc29y",
        "after=%%",
    ] {
        let resp = client()
            .get(server.url(&format!("/jars/events?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{query}");
        assert_eq!(
            error_name(&resp.text().await.unwrap()),
            "InvalidArgumentError"
        );
    }
}

#[tokio::test]
async fn event_creation_is_limited_per_member() {
    let server = TestServer::start("[limits]\ncreate_per_hour = 3\n").await;
    server.add_user("flooder", "pw", false);
    server.add_user("other", "pw", false);
    let flooder = server.login("flooder", "pw").await;
    let other = server.login("other", "pw").await;
    for i in 0..3 {
        server
            .create_event(&flooder, &format!("show {i}"), false)
            .await;
    }
    let form = [
        ("auth", flooder.as_str()),
        ("title", "one more"),
        ("description", "d"),
        ("private", "false"),
    ];
    let retry = refused_as_too_many(&server.url("/jars/create"), &form).await;
    // Three an hour: the next one is due within twenty minutes.
    assert!((1..=1200).contains(&retry), "retry-after {retry}");
    // The refused request created nothing; another member is not affected.
    let (_, _, _, _, ids) = list(&server, "/jars/events").await;
    assert_eq!(ids.len(), 3);
    server.create_event(&other, "their show", false).await;
}

/// Mints a ticket for `event` with `token`, bound to `referer` when given.
async fn mint(
    server: &TestServer,
    token: &str,
    event: &str,
    referer: Option<&str>,
) -> (u16, String) {
    let mut form = vec![("auth", token), ("mount", event)];
    if let Some(r) = referer {
        form.push(("referer", r));
    }
    post_form(&server.url("/jars/ticket"), &form).await
}

#[tokio::test]
async fn ticket_minting_is_limited_per_member_and_referers_are_bounded() {
    let server = TestServer::start("[limits]\ntickets_per_minute = 3\n").await;
    server.add_user("owner", "pw", false);
    server.add_user("admin", "pw", true);
    let owner = server.login("owner", "pw").await;
    let admin = server.login("admin", "pw").await;
    let event = server.create_event(&owner, "show", false).await;

    // The ~6 KiB tickets of the attack: a 2 KiB referer is refused before anything is signed,
    // and the refusal is not counted against the member.
    let long = format!("https://radio.example/{}", "p".repeat(2048));
    let (status, body) = mint(&server, &owner, &event, Some(&long)).await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (400, "InvalidArgumentError")
    );
    let at_limit = format!("https://radio.example/{}", "p".repeat(512 - 22));
    assert_eq!(at_limit.len(), 512);
    let (status, body) = mint(&server, &owner, &event, Some(&at_limit)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = mint(&server, &owner, &event, Some(&format!("{at_limit}x"))).await;
    assert_eq!(status, 400, "513 bytes");

    for _ in 0..2 {
        let (status, body) = mint(&server, &owner, &event, None).await;
        assert_eq!(status, 200, "{body}");
    }
    let form = [("auth", owner.as_str()), ("mount", event.as_str())];
    let retry = refused_as_too_many(&server.url("/jars/ticket"), &form).await;
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    // Counted per member: the admin still mints for the same event.
    let (status, _) = mint(&server, &admin, &event, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn listings_wait_for_their_own_slots_and_never_hold_up_single_event_reads() {
    let server = TestServer::start("[limits]\nmax_concurrent_lists = 1\n").await;
    flood(&server, 1, 50).await;
    let (_, _, _, _, ids) = list(&server, "/jars/events?limit=1").await;
    // Every listing slot taken, as by a crowd of slow readers.
    let slots = server.state.api.load().list_slots.clone();
    let held = slots.clone().acquire_many_owned(1).await.unwrap();
    let waiting = tokio::spawn({
        let url = server.url("/jars/events");
        async move { client().get(url).send().await.unwrap().status().as_u16() }
    });
    // A read of one event (what the callbacks do) goes through meanwhile...
    for _ in 0..20 {
        let resp = client()
            .get(server.url(&format!("/jars/events/{}", ids[0])))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // ...while the listing still waits for a slot; once one is free it is answered.
    assert!(!waiting.is_finished(), "a listing ran without a slot");
    drop(held);
    assert_eq!(waiting.await.unwrap(), 200);
}
