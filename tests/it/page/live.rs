//! In the browser, with a real Icecast: a member logs in, creates a private event, streams to
//! the source URL its go-live card shows with the password it shows, mints a listener link
//! that Icecast admits, and sees the event go live and its listener count rise; an admin sees
//! the same event, its stats and live sessions, revokes the listener's link (Icecast drops
//! it) and ends the event (Icecast drops the source). Visitors see public live events with a
//! listen link.

use std::time::Duration;

use jars::clock::Clock;

use super::*;
use support::icecast::{self, Icecast};
use support::{client, post_form};

const CB_USER: &str = "icecast";
const CB_PASS: &str = "page-callback-secret";
const WAIT: Duration = Duration::from_secs(10);

fn callbacks_toml() -> String {
    format!("[icecast]\nusername = \"{CB_USER}\"\npassword = \"{CB_PASS}\"\n")
}

/// `GET /jars/events/{id}?all=1` as `token`: (status, body).
async fn event_as(jars: &TestServer, token: &str, id: &str) -> (u16, serde_json::Value) {
    let resp = client()
        .get(jars.url(&format!("/jars/events/{id}?all=1")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[cfg_attr(
    not(all(
        jars_has = "chromium",
        jars_has = "chromedriver",
        jars_has = "icecast2"
    )),
    ignore = "needs chromium and chromedriver and icecast2, not all found when the tests were built (install or start them, then touch build.rs)"
)]
#[tokio::test]
async fn a_member_goes_live_shares_a_link_and_an_admin_ends_the_event() {
    icecast::require_icecast();
    browser::require_chromium();
    let jars = TestServer::start(&callbacks_toml()).await;
    jars.add_user("dj", "dj-password", false);
    jars.add_user("boss", "boss-password", true);
    let auth_url = jars.url("/icecast/auth");
    let icecast = tokio::task::spawn_blocking(move || Icecast::start(&auth_url, CB_USER, CB_PASS))
        .await
        .unwrap();
    // Icecast's port is known only now: the page learns it from a reloaded [ui], and jars
    // its admin API (to drop the sessions of an ended event) from [[icecast.servers]].
    let icecast_url = format!("http://127.0.0.1:{}", icecast.port);
    reload(
        &jars,
        &format!(
            "{}[[icecast.servers]]\nserver = \"localhost\"\nport = {}\n\
             admin_url = \"{icecast_url}\"\nadmin_user = \"{}\"\nadmin_password = \"{}\"\n\
             [ui]\nicecast_url = \"{icecast_url}/\"\nrelay_url = \"wss://relay.example:7443\"\n",
            callbacks_toml(),
            icecast.port,
            icecast::ADMIN_USER,
            icecast::ADMIN_PASSWORD,
        ),
    );
    let b = open_page(&jars).await;
    b.log_in("dj", "dj-password").await;

    b.click("#create summary").await;
    b.fill("#create-title", "Breakfast").await;
    b.click("#create-private").await;
    b.click("#create-form button[type=submit]").await;
    let card = "#my-events article.event";
    b.wait_text(&format!("{card} h3"), "the new event", |t| t == "Breakfast")
        .await;
    let id = b
        .find(card)
        .await
        .attr("data-event-id")
        .await
        .unwrap()
        .expect("data-event-id");
    let card = format!("#my-events article.event[data-event-id=\"{id}\"]");
    assert!(b
        .text(&format!("{card} .meta"))
        .await
        .starts_with("Private"));

    // The go-live card: where an encoder streams, and the password (the login token).
    b.click(&format!("{card} details.go-live summary")).await;
    b.click(&format!("{card} details.encoder summary")).await;
    let mount = b.text(&format!("{card} .mount")).await;
    assert_eq!(mount, format!("/{id}.mp3"));
    assert_eq!(
        b.value(&format!("{card} .source-url")).await,
        format!("{icecast_url}/{id}.mp3")
    );
    assert_eq!(
        b.value(&format!("{card} .relay-url")).await,
        format!("wss://relay.example:7443/{id}.mp3")
    );
    let password = b.value(&format!("{card} .source-password")).await;
    assert!(password.starts_with("eyJ"), "the token: {password:.12}…");
    b.click(&format!("{card} .approve")).await;
    b.wait_text(
        &format!("{card} details.go-live .message"),
        "relay approval",
        |t| t.starts_with("Approved"),
    )
    .await;

    // A source streams with exactly what the page showed; the card sees it live.
    let source = icecast::start_source(icecast.port, &mount, "source", &password).await;
    assert_eq!(source.status(), 200, "{}", icecast.error_log());
    b.wait_text(&format!("{card} .live-state"), "live", |t| {
        t == "Live: 0 listeners"
    })
    .await;

    // A listener link, capped at 2 listeners, that the real Icecast admits.
    b.click(&format!("{card} details.listener-link summary"))
        .await;
    b.fill(&format!("{card} .link-cap"), "2").await;
    b.click(&format!("{card} .make-link")).await;
    b.wait_text(
        &format!("{card} details.listener-link .message"),
        "a listener link",
        |t| t == "Listener link made.",
    )
    .await;
    let link = b.value(&format!("{card} .link-url")).await;
    let path = link
        .strip_prefix(&icecast_url)
        .unwrap_or_else(|| panic!("{link} is not on {icecast_url}"));
    assert!(path.starts_with(&format!("{mount}?token=eyJ")), "{link}");
    let (fits, sizes) = b.fits_width().await;
    assert!(fits, "the open cards fit a phone's width: {sizes}");
    let refused = icecast::listen(icecast.port, &mount, None, 1, WAIT).await;
    assert_eq!(refused.status, 401, "a private event needs the link");
    let listener = icecast::open_listener(icecast.port, path, None).await;
    assert_eq!(listener.status(), 200, "{}", icecast.error_log());
    b.wait_text(&format!("{card} .live-state"), "one listener", |t| {
        t == "Live: 1 listener"
    })
    .await;
    let on_air = b
        .run(&format!(
            "return document.querySelector('#on-air-list li[data-event-id=\"{id}\"]') === null"
        ))
        .await;
    assert_eq!(on_air, true, "a private event is not listed on air");

    // An admin sees the event among all events, with its listener, and ends it.
    b.click("#logout").await;
    b.wait_shown("#login", true).await;
    b.log_in("boss", "boss-password").await;
    b.wait_shown("#admin", true).await;
    let admin_card = format!("#all-events article.event[data-event-id=\"{id}\"]");
    b.wait_text(
        &format!("{admin_card} .live-state"),
        "live for the admin",
        |t| t == "Live: 1 listener",
    )
    .await;
    // Its stats, with the chart of listeners a minute, two minutes on (jars' clock stands
    // still in tests; the open session counts up to now).
    jars.clock.advance(Duration::from_secs(120));
    b.click(&format!("{admin_card} details.stats summary"))
        .await;
    b.wait_text(
        &format!("{admin_card} .stat-sessions"),
        "one session",
        |t| t == "1",
    )
    .await;
    b.wait_text(&format!("{admin_card} .stat-peak"), "the peak", |t| {
        t == "1"
    })
    .await;
    let drawn = b
        .run(&format!(
            "return document.querySelectorAll('{admin_card} svg.chart path.line').length"
        ))
        .await;
    assert_eq!(drawn, 1, "the chart has its line");

    // Its live sessions: the source and the one listener, on this jars' Icecast.
    b.click(&format!("{admin_card} details.sessions summary"))
        .await;
    b.wait_text(
        &format!("{admin_card} details.sessions caption"),
        "one listener session",
        |t| t == "1 listening on this jars' Icecast",
    )
    .await;
    let source_line = b
        .text(&format!("{admin_card} details.sessions .sessions-out p"))
        .await;
    assert!(
        source_line.starts_with(&format!("Source on {mount}")),
        "{source_line}"
    );
    // Revoking that listener's link drops it from Icecast.
    b.click(&format!("{admin_card} .revoke-jti")).await;
    b.wait_text(
        &format!("{admin_card} details.sessions .message"),
        "a revoked link",
        |t| t == "Revoked the link.",
    )
    .await;
    assert!(
        listener.wait_closed(WAIT).await.is_some(),
        "the listener of a revoked link is still connected\n{}",
        icecast.error_log()
    );
    b.click(&format!("{admin_card} .end-event")).await;
    b.click(&format!("{admin_card} .end-confirm")).await;
    b.wait_text("#status", "ended", |t| {
        t.starts_with("\"Breakfast\" ended at")
    })
    .await;
    let boss = jars.login("boss", "boss-password").await;
    let (status, event) = event_as(&jars, &boss, &id).await;
    assert_eq!(status, 200, "{event}");
    assert!(
        event["expires_time"].as_i64().unwrap() <= jars.clock.now().timestamp(),
        "ended: {event}"
    );
    // Ending drops the event's source from Icecast.
    let started = std::time::Instant::now();
    while source.is_streaming() {
        assert!(
            started.elapsed() < WAIT,
            "the source of an ended event is still streaming\n{}",
            icecast.error_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Ended events leave the list unless asked for.
    b.wait_shown(&admin_card, false).await;
    assert_eq!(super::alert(&b).await, "", "nothing went wrong on the page");
    b.close().await;
    drop(listener);
    source.stop().await;
}

/// Tells jars what Icecast would: `action` (`mount_add`, `mount_remove`) on `/<id>`.
async fn mount_change(jars: &TestServer, action: &str, id: &str) {
    let mount = format!("/{id}");
    let (status, body) = post_form(
        &jars.url("/icecast/auth"),
        &[
            ("action", action),
            ("mount", mount.as_str()),
            ("server", "localhost"),
            ("port", "8000"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{action}: {body}");
}

#[cfg_attr(
    not(all(jars_has = "chromium", jars_has = "chromedriver")),
    ignore = "needs chromium and chromedriver, not found when the tests were built (apt-get install chromium chromium-driver, then touch build.rs)"
)]
#[tokio::test]
async fn visitors_see_public_live_events_with_a_listen_link() {
    let jars =
        TestServer::start("[ui]\nicecast_url = \"https://radio.example\"\nmount_extension = \"\"")
            .await;
    jars.add_user("dj", "dj-password", false);
    let token = jars.login("dj", "dj-password").await;
    let public = jars.create_event(&token, "Morning show", false).await;
    let private = jars.create_event(&token, "Rehearsal", true).await;
    mount_change(&jars, "mount_add", &public).await;
    mount_change(&jars, "mount_add", &private).await;
    let b = open_page(&jars).await;
    let item = format!("#on-air-list li[data-event-id=\"{public}\"]");
    assert_eq!(b.text(&format!("{item} h3")).await, "Morning show");
    assert_eq!(
        b.text(&format!("{item} .live-state")).await,
        "On air · 0 listeners"
    );
    let play = b.find(&format!("{item} button.play")).await;
    assert_eq!(play.text().await.unwrap(), "Play");
    assert_eq!(
        play.attr("aria-label").await.unwrap().as_deref(),
        Some("Play Morning show")
    );
    let listed = b
        .run("return document.querySelectorAll('#on-air-list li').length")
        .await;
    assert_eq!(listed, 1, "the private event is not listed");
    b.wait_shown("#on-air-empty", false).await;

    mount_change(&jars, "mount_remove", &public).await;
    b.wait_shown("#on-air-empty", true).await;
    assert_eq!(super::alert(&b).await, "");
    b.close().await;
}
