//! The studio and the public face in a real headless Chromium, with its fake microphone,
//! against a real Icecast 2.4.4 fed by jars' `/webcast`: a member goes live from the page,
//! Icecast lists the source, a second window plays it from the public page (its `<audio>`
//! advances) and sees the stream title; the owner drops one listener, stops, goes live again
//! and ends the event, and the studio says why it stopped. A guest link opens the studio of
//! its (private) event only: on another event it is refused; the guest streams a local file
//! without a microphone, a listener link to the page plays the private show, and revoking the
//! guest link ends the guest's show.
//! Screenshots of the public page, the studio and the staff view come from here.

use std::time::Duration;

use super::*;
use support::icecast::{self, Icecast};

const CB_USER: &str = "icecast";
const CB_PASS: &str = "studio-callback-secret";
const RELAY_USER: &str = "relay";
const RELAY_PASS: &str = "studio-relay-password";
const WAIT: Duration = Duration::from_secs(10);

/// A small logo for the station, as an operator would give it.
const LOGO: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\">\
    <circle cx=\"32\" cy=\"32\" r=\"30\" fill=\"#3949ab\"/>\
    <path d=\"M20 40a12 12 0 0 1 24 0M14 40a18 18 0 0 1 36 0\" stroke=\"#fff\" \
    stroke-width=\"4\" fill=\"none\"/><circle cx=\"32\" cy=\"40\" r=\"4\" fill=\"#fff\"/></svg>";

/// jars (callbacks, a trusted relay, `[webcast]`, the station's name and logo, its Icecast's
/// admin API), an Icecast calling it, and a member `dj` (password `dj-password`).
struct Rig {
    jars: TestServer,
    icecast: Icecast,
    /// `dj`'s login token.
    token: String,
    /// Holds the logo file.
    _files: tempfile::TempDir,
}

async fn rig() -> Rig {
    icecast::require_icecast();
    browser::require_chromium();
    let port = icecast::free_port();
    let files = tempfile::tempdir().unwrap();
    let logo = files.path().join("logo.svg");
    std::fs::write(&logo, LOGO).unwrap();
    let icecast_url = format!("http://127.0.0.1:{port}");
    let jars = TestServer::start(&format!(
        "[icecast]\nusername = \"{CB_USER}\"\npassword = \"{CB_PASS}\"\n\
         [[icecast.trusted_sources]]\nuser = \"{RELAY_USER}\"\npassword = \"{RELAY_PASS}\"\n\
         [[icecast.servers]]\nserver = \"localhost\"\nport = {port}\nadmin_url = \"{icecast_url}\"\n\
         admin_user = \"{}\"\nadmin_password = \"{}\"\n\
         [webcast]\nicecast_url = \"{icecast_url}\"\nuser = \"{RELAY_USER}\"\npassword = \"{RELAY_PASS}\"\n\
         [ui]\nicecast_url = \"{icecast_url}\"\nstation_name = \"Radio Example\"\n\
         station_description = \"Student radio: live shows every evening\"\nlogo = \"{}\"\n",
        icecast::ADMIN_USER,
        icecast::ADMIN_PASSWORD,
        logo.display(),
    ))
    .await;
    let url = jars.url("/icecast/auth");
    let icecast =
        tokio::task::spawn_blocking(move || Icecast::start_on(port, &url, CB_USER, CB_PASS))
            .await
            .unwrap();
    jars.add_user("dj", "dj-password", false);
    let token = jars.login("dj", "dj-password").await;
    Rig {
        jars,
        icecast,
        token,
        _files: files,
    }
}

/// `seconds` of a 440 Hz tone as a WAV file (48 kHz, mono, 16 bits): a DJ's local file.
fn tone_wav(seconds: u32) -> Vec<u8> {
    let rate = 48_000u32;
    let samples = rate * seconds;
    let mut wav = Vec::with_capacity(44 + 2 * samples as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + 2 * samples).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(2 * samples).to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(rate);
        let v = (t * 440.0 * std::f64::consts::TAU).sin() * 0.5 * f64::from(i16::MAX);
        wav.extend_from_slice(&(v as i16).to_le_bytes());
    }
    wav
}

/// Whether Icecast lists `mount` among its mounts with a source.
async fn icecast_lists(icecast: &Icecast, mount: &str) -> bool {
    let admin = Some((icecast::ADMIN_USER, icecast::ADMIN_PASSWORD));
    let (status, body) = icecast::get_page(icecast.port, "/admin/listmounts", admin).await;
    assert_eq!(status, 200, "{body}");
    body.contains(&format!("mount=\"{mount}\""))
}

/// Waits until Icecast lists `mount` (`true`) or not.
async fn wait_listed(icecast: &Icecast, mount: &str, listed: bool) {
    let started = std::time::Instant::now();
    while icecast_lists(icecast, mount).await != listed {
        assert!(
            started.elapsed() < WAIT,
            "Icecast {} {mount}\n{}",
            if listed {
                "never listed"
            } else {
                "still lists"
            },
            icecast.error_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /jars/events/{id}` with `token` (or none).
async fn event(jars: &TestServer, id: &str, token: Option<&str>) -> serde_json::Value {
    let mut req = support::client().get(jars.url(&format!("/jars/events/{id}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
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
async fn a_member_broadcasts_from_the_page_and_a_listener_plays_it() {
    let Rig {
        jars,
        icecast,
        token,
        _files,
    } = rig().await;
    let later = jars.create_event(&token, "Late Jazz", false).await;
    let id = jars.create_event(&token, "Breakfast Show", false).await;
    let mount = format!("/{id}.mp3");
    let b = open_page(&jars).await;
    // The station presents itself; nothing is claimed before jars answered.
    assert_eq!(b.text("#station-name").await, "Radio Example");
    assert_eq!(
        b.run("return document.title").await,
        serde_json::json!("Radio Example")
    );
    b.wait_until(
        "document.getElementById('station-logo').complete && document.getElementById('station-logo').naturalWidth > 0",
        "the logo",
    )
    .await;
    b.wait_shown("#on-air-empty", true).await;
    b.wait_shown("#on-air-checking", false).await;
    b.wait_text(
        &format!("#next-list li[data-event-id=\"{later}\"] h3"),
        "coming up",
        |t| t == "Late Jazz",
    )
    .await;
    b.log_in("dj", "dj-password").await;
    let card = format!("#my-events article.event[data-event-id=\"{id}\"]");
    b.wait_text(&format!("{card} .meta"), "the owner's name", |t| {
        t.starts_with("Public · by dj ·")
    })
    .await;

    // The studio: the fake microphone is listed by name and heard on the level meter.
    b.click(&format!("{card} details.go-live summary")).await;
    b.click(&format!("{card} .studio-check")).await;
    b.wait_until(
        &format!("document.querySelector('{card} .studio-mic').options.length >= 3"),
        "the microphones listed",
    )
    .await;
    b.wait_until(
        &format!("document.querySelector('{card} .studio-level').value > 0.01"),
        "the level meter moving",
    )
    .await;
    b.fill(&format!("{card} .studio-title"), "Morning Mix")
        .await;
    b.click(&format!("{card} .studio-send-title")).await;
    b.click(&format!("{card} .studio-start")).await;
    let state = format!("{card} .studio-state");
    b.wait_text(&state, "live", |t| t == "Live").await;
    wait_listed(&icecast, &mount, true).await;
    let e = event(&jars, &id, Some(&token)).await;
    assert_eq!(e["stream_title"], "Morning Mix", "{e}");
    assert_eq!(e["owner_name"], "dj", "{e}");
    let anonymous = event(&jars, &id, None).await;
    assert_eq!(
        anonymous["owner_name"],
        serde_json::Value::Null,
        "{anonymous}"
    );

    // Staff: one listener (a plain HTTP client) dropped by hand, nothing revoked.
    let raw = icecast::open_listener(icecast.port, &mount, None).await;
    assert_eq!(raw.status(), 200, "{}", icecast.error_log());
    b.wait_text(&format!("{card} .studio-listeners"), "one listener", |t| {
        t == "1 listener"
    })
    .await;
    b.click(&format!("{card} details.sessions summary")).await;
    b.wait_text(
        &format!("{card} details.sessions caption"),
        "the listener",
        |t| t == "1 listening on this jars' Icecast",
    )
    .await;
    let source = b.text(&format!("{card} .source-line")).await;
    assert!(source.contains(", dj"), "named, not an id: {source}");
    let (fits, sizes) = b.fits_width().await;
    assert!(
        fits,
        "the studio and the sessions fit a phone's width: {sizes}"
    );
    b.screenshot("staff").await;
    b.click(&format!("{card} details.sessions .drop")).await;
    assert!(
        raw.wait_closed(WAIT).await.is_some(),
        "the dropped listener is still connected\n{}",
        icecast.error_log()
    );
    b.wait_text(
        &format!("{card} details.sessions .message"),
        "dropped",
        |t| t.starts_with("Dropped that listener"),
    )
    .await;
    b.screenshot("studio").await;

    // A second visitor plays the show from the public page and sees its title.
    let studio_window = b.open_window(&jars.url("/")).await;
    let item = format!("#on-air-list li[data-event-id=\"{id}\"]");
    b.wait_text(&format!("{item} .stream-title"), "the title", |t| {
        t == "Now playing: Morning Mix"
    })
    .await;
    b.click(&format!("{item} .play")).await;
    b.wait_until(
        "document.getElementById('player').currentTime > 2",
        "the player advancing",
    )
    .await;
    assert_eq!(b.text(&format!("{item} .play")).await, "Stop");
    b.screenshot("public").await;
    assert_eq!(
        super::alert(&b).await,
        "",
        "nothing refused in the listener's window"
    );
    let listener_window = b.window().await;

    // Back in the studio: the listener is counted; Stop ends the source.
    b.switch_to(studio_window.clone()).await;
    b.wait_text(&format!("{card} .studio-listeners"), "the player", |t| {
        t == "1 listener"
    })
    .await;
    b.click(&format!("{card} .studio-stop")).await;
    b.wait_text(&state, "stopped", |t| t == "Off air").await;
    wait_listed(&icecast, &mount, false).await;
    assert_eq!(
        b.text(&format!("{card} .studio-why")).await,
        "You stopped the broadcast."
    );
    // The listener's player notices, by the stream's end or the next refresh.
    b.switch_to(listener_window).await;
    b.wait_text("#player-line", "the listener told", |t| {
        t.starts_with("The show")
    })
    .await;
    b.wait_until(
        "document.getElementById('player').paused",
        "the player stopped",
    )
    .await;
    b.switch_to(studio_window.clone()).await;

    // Live again, then the owner ends the event: the studio says why it stopped.
    b.click(&format!("{card} .studio-start")).await;
    b.wait_text(&state, "live again", |t| t == "Live").await;
    wait_listed(&icecast, &mount, true).await;
    b.click(&format!("{card} .end-event")).await;
    b.click(&format!("{card} .end-confirm")).await;
    b.wait_text(&state, "ended", |t| t == "Ended: The event has ended.")
        .await;
    wait_listed(&icecast, &mount, false).await;
    assert_eq!(
        super::alert(&b).await,
        "",
        "nothing went wrong in the studio"
    );
    b.close().await;
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
async fn a_guest_link_opens_the_studio_of_its_event_only_until_revoked() {
    let Rig {
        jars,
        icecast,
        token,
        _files: files,
    } = rig().await;
    let id = jars.create_event(&token, "Guest hour", true).await;
    let other = jars.create_event(&token, "Rehearsal", false).await;
    let sound = files.path().join("tone.wav");
    std::fs::write(&sound, tone_wav(10)).unwrap();
    let b = open_page(&jars).await;
    b.log_in("dj", "dj-password").await;
    let card = format!("#my-events article.event[data-event-id=\"{id}\"]");
    b.click(&format!("{card} details.guest-link summary")).await;
    b.click(&format!("{card} .make-guest-link")).await;
    b.wait_text(
        &format!("{card} details.guest-link .message"),
        "a guest link",
        |t| t == "Guest link made.",
    )
    .await;
    let link = b.value(&format!("{card} .guest-url")).await;
    let prefix = jars.url(&format!("/#studio={id}&ticket="));
    assert!(link.starts_with(&prefix), "{link}");

    // The same ticket on another event: the guest's studio opens, and jars refuses it.
    let owner_window = b
        .open_window(&link.replace(&format!("studio={id}"), &format!("studio={other}")))
        .await;
    b.wait_text("#guest-title", "the other event's title", |t| {
        t == "Guest studio: Rehearsal"
    })
    .await;
    for part in ["#on-air", "#login", "#member"] {
        b.wait_shown(part, false).await;
    }
    b.click("#guest-studio .studio-start").await;
    b.wait_text("#guest-studio .studio-state", "refused", |t| {
        t == "Ended: This guest link is for another event."
    })
    .await;
    assert!(!icecast_lists(&icecast, &format!("/{other}.mp3")).await);

    // Its own event (private: visitors are not told its title): the ticket leaves the address
    // bar; a local file, no microphone, is what goes out.
    b.goto("about:blank").await;
    b.goto(&link).await;
    b.wait_text("#guest-event", "the guest's studio", |t| {
        t.starts_with("You are the guest DJ of this event.")
    })
    .await;
    assert_eq!(b.text("#guest-title").await, "Guest studio");
    assert_eq!(
        b.run("return location.hash").await,
        serde_json::json!(format!("#studio={id}"))
    );
    b.click("#guest-studio .studio-mic option[value=none]")
        .await;
    b.find("#guest-studio .studio-file")
        .await
        .send_keys(&sound.display().to_string())
        .await
        .unwrap();
    b.click("#guest-studio .studio-check").await;
    b.run("document.querySelector('#guest-studio .studio-file-player').play()")
        .await;
    b.wait_until(
        "document.querySelector('#guest-studio .studio-level').value > 0.1",
        "the file heard on the meter",
    )
    .await;
    b.click("#guest-studio .studio-start").await;
    b.wait_text("#guest-studio .studio-state", "the guest live", |t| {
        t == "Live"
    })
    .await;
    let mount = format!("/{id}.mp3");
    wait_listed(&icecast, &mount, true).await;
    let (fits, sizes) = b.fits_width().await;
    assert!(fits, "the guest's studio fits a phone's width: {sizes}");
    b.screenshot("guest-studio").await;
    let guest_window = b.window().await;

    // A listener link to the page plays the private show with its ticket.
    b.switch_to(owner_window.clone()).await;
    b.click(&format!("{card} details.listener-link summary"))
        .await;
    b.click(&format!("{card} .make-link")).await;
    let page_link = format!("{card} .link-page");
    b.find(&page_link).await;
    let listen = b.value(&page_link).await;
    assert!(
        listen.starts_with(&jars.url(&format!("/#listen={id}&token=ey"))),
        "{listen}"
    );
    b.open_window(&listen).await;
    b.click("#listen .play").await;
    b.wait_until(
        "document.getElementById('player').currentTime > 2",
        "the private show playing",
    )
    .await;
    assert_eq!(
        super::alert(&b).await,
        "",
        "nothing refused for the listener"
    );

    // The owner sees a guest on the source and revokes the link: the guest is told.
    b.switch_to(owner_window).await;
    b.click(&format!("{card} details.sessions summary")).await;
    b.wait_text(&format!("{card} .source-line"), "the guest's source", |t| {
        t.contains("a guest DJ (link made by dj)")
    })
    .await;
    b.click(&format!("{card} .revoke-source")).await;
    b.wait_text(
        &format!("{card} details.sessions .message"),
        "revoked",
        |t| t == "Revoked the link.",
    )
    .await;
    b.switch_to(guest_window).await;
    b.wait_text("#guest-studio .studio-state", "the guest told", |t| {
        t == "Ended: The guest link was revoked: the station took back the permission to broadcast."
    })
    .await;
    wait_listed(&icecast, &mount, false).await;
    assert_eq!(
        super::alert(&b).await,
        "",
        "nothing went wrong for the guest"
    );
    b.close().await;
}
