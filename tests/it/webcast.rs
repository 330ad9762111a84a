//! jars' own webcast relay against a real Icecast 2.4.4: DJs (a member, and a guest with a
//! source ticket) stream through `/webcast/{mount}` with a webcast client written for the
//! tests, jars PUTs the audio to Icecast as its trusted relay, listeners hear it; two DJs on
//! two events never cross; an Icecast restart mid-show is survived with one source
//! connection; a revoked guest is cut and told why. And guests through webcaster-relay's
//! approval, `/jars/connect`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::icecast_e2e::{rig_config, Rig, CB_PASS, CB_USER, RELAY_PASS, RELAY_USER, WAIT};
use crate::support::icecast::{self, Icecast};
use crate::support::webcast::{hear, WebcastDj};
use crate::support::{error_name, post_form, TestServer};

/// jars with `[webcast]` pointing at an Icecast started on a port chosen first.
async fn rig() -> Rig {
    icecast::require_icecast();
    let port = icecast::free_port();
    let webcast = format!(
        "[webcast]\nicecast_url = \"http://127.0.0.1:{port}\"\nuser = \"{RELAY_USER}\"\n\
         password = \"{RELAY_PASS}\"\n"
    );
    let jars = TestServer::start(&rig_config(&webcast)).await;
    let owner_id = jars.add_user("owner", "pw", false);
    jars.add_user("other", "pw", false);
    let owner = jars.login("owner", "pw").await;
    let other = jars.login("other", "pw").await;
    let url = jars.url("/icecast/auth");
    let icecast =
        tokio::task::spawn_blocking(move || Icecast::start_on(port, &url, CB_USER, CB_PASS))
            .await
            .unwrap();
    Rig {
        jars,
        icecast,
        owner,
        other,
        owner_id,
    }
}

/// A source ticket for `event`, minted by the rig's owner.
async fn guest_ticket(rig: &Rig, event: &str) -> (String, String) {
    let (status, body) = post_form(
        &rig.jars.url("/jars/ticket"),
        &[
            ("auth", rig.owner.as_str()),
            ("mount", event),
            ("kind", "source"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ticket = serde_json::from_str::<Value>(&body).unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let payload = ticket.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    (ticket, claims["jti"].as_str().unwrap().to_string())
}

fn stream_url(rig: &Rig, mount: &str) -> String {
    format!("http://127.0.0.1:{}/{mount}", rig.icecast.port)
}

/// Listens to `mount` until `want` bytes arrive, trying again while Icecast has no source.
async fn hear_within(rig: &Rig, mount: &str, want: usize, within: Duration) -> Vec<u8> {
    let started = Instant::now();
    loop {
        let heard = hear(&stream_url(rig, mount), want, Duration::from_secs(3)).await;
        if heard.len() >= want || started.elapsed() > within {
            return heard;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(rig: &Rig, name: &str) -> f64 {
    let text = rig.jars.state.metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

fn relay_allowed(rig: &Rig) -> u64 {
    rig.jars
        .state
        .metrics
        .auth_decisions
        .with_label_values(&["stream_auth", "allow", "ok"])
        .get()
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_member_and_a_guest_go_live_through_webcast_and_never_cross() {
    let rig = rig().await;
    let a = rig.jars.create_event(&rig.owner, "Breakfast", false).await;
    let b = rig.jars.create_event(&rig.owner, "Guest hour", false).await;
    let (ticket, _) = guest_ticket(&rig, &b).await;
    let addr = rig.jars.addr;

    let member = WebcastDj::go_live(addr, &format!("{a}.mp3"), &rig.owner, 0xAA).await;
    assert_eq!(member.protocol.as_deref(), Some("webcast"));
    let guest = WebcastDj::go_live(addr, &format!("{b}.mp3"), &ticket, 0xBB).await;
    // Each listener hears its own DJ only.
    for (event, mine, theirs) in [(&a, 0xAA, 0xBB), (&b, 0xBB, 0xAA)] {
        let heard = hear_within(&rig, &format!("{event}.mp3"), 16 * 1024, WAIT).await;
        assert!(
            heard.len() >= 16 * 1024,
            "{event}: heard {} bytes",
            heard.len()
        );
        assert!(heard.contains(&mine), "{event}: not its DJ's audio");
        assert!(!heard.contains(&theirs), "{event}: the other DJ's audio");
    }
    assert_eq!(member.closed(), None);
    assert_eq!(guest.closed(), None);
    let e = rig
        .wait_event(&b, "guest live", |e| e["live"] == true)
        .await;
    assert_eq!(e["connected_by"], rig.owner_id, "the ticket's minter");
    let e = rig
        .wait_event(&a, "member live", |e| e["live"] == true)
        .await;
    assert_eq!(e["connected_by"], rig.owner_id);
    assert_eq!(metric(&rig, "jars_webcast_sessions"), 2.0);
    assert!(metric(&rig, "jars_webcast_bytes_total") > 32.0 * 1024.0);

    // The title comes from the DJ's metadata frames.
    member.metadata("Song", "Band");
    let started = Instant::now();
    loop {
        let admin = Some((icecast::ADMIN_USER, icecast::ADMIN_PASSWORD));
        let (_, status) = icecast::get_page(rig.icecast.port, "/admin/stats", admin).await;
        if status.contains("Band - Song") {
            break;
        }
        assert!(started.elapsed() < WAIT, "title never shown: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A second DJ on a live event is refused; one without rights is told so.
    let intruder = WebcastDj::go_live(addr, &format!("{a}.mp3"), &rig.other, 0xCC).await;
    let closed = intruder.wait_closed(WAIT).await;
    assert!(
        matches!(closed.as_ref(), Some((4409, r)) if r == "mount_in_use"),
        "{closed:?}"
    );
    let c = rig.jars.create_event(&rig.owner, "Nobody's", false).await;
    let refused = WebcastDj::go_live(addr, &c, &rig.other, 0xCC).await;
    assert_eq!(
        refused.wait_closed(WAIT).await,
        Some((4403, "not_owner".into()))
    );
    let stranger = WebcastDj::go_live(addr, &c, &ticket, 0xCC).await;
    assert_eq!(
        stranger.wait_closed(WAIT).await,
        Some((4403, "wrong_event".into()))
    );
    let not_hello = Some(r#"{"type":"metadata"}"#.to_string());
    let silent = WebcastDj::connect(
        addr,
        &c,
        not_hello,
        std::iter::empty(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        silent.wait_closed(WAIT).await,
        Some((4400, "bad_hello".into()))
    );

    // The DJ leaving ends their Icecast source.
    member.leave();
    rig.wait_event(&a, "member gone", |e| e["live"] == false)
        .await;
    assert!(rig.icecast.error_log().matches("in use").count() == 0);
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icecast_restarted_mid_show_is_heard_again_with_one_source_connection() {
    let mut rig = rig().await;
    let event = rig.jars.create_event(&rig.owner, "Survivor", false).await;
    let mount = format!("{event}.mp3");
    let dj = WebcastDj::go_live(rig.jars.addr, &mount, &rig.owner, 0xAA).await;
    assert!(hear_within(&rig, &mount, 8192, WAIT).await.len() >= 8192);
    let allowed = relay_allowed(&rig);

    // A crash: no mount_remove, every connection cut.
    let restarted = Instant::now();
    tokio::task::block_in_place(|| rig.icecast.restart());
    let heard = hear_within(&rig, &mount, 8192, WAIT).await;
    assert!(
        heard.len() >= 8192 && heard.contains(&0xAA),
        "heard {} bytes within {:?} of the restart\nicecast error log:\n{}",
        heard.len(),
        restarted.elapsed(),
        rig.icecast.error_log()
    );
    eprintln!(
        "heard again {:?} after the restart began",
        restarted.elapsed()
    );
    assert!(restarted.elapsed() < Duration::from_secs(10) + Duration::from_secs(3));
    // One source connection: exactly one more stream_auth, none refused as in use.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(relay_allowed(&rig), allowed + 1);
    assert_eq!(rig.icecast.error_log().matches("in use").count(), 0);
    assert!(metric(&rig, "jars_webcast_reconnects_total") >= 1.0);
    assert_eq!(dj.closed(), None, "the DJ did nothing and noticed nothing");
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn a_revoked_guest_is_cut_and_told_why() {
    let rig = rig().await;
    let event = rig.jars.create_event(&rig.owner, "Guest", false).await;
    let (ticket, jti) = guest_ticket(&rig, &event).await;
    let mount = format!("{event}.mp3");
    let guest = WebcastDj::go_live(rig.jars.addr, &mount, &ticket, 0xBB).await;
    assert!(hear_within(&rig, &mount, 4096, WAIT).await.len() >= 4096);

    let (status, body) = post_form(
        &rig.jars.url("/jars/tickets/revoke"),
        &[
            ("auth", rig.owner.as_str()),
            ("jti", jti.as_str()),
            ("mount", event.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        guest.wait_closed(WAIT).await,
        Some((4403, "revoked".into()))
    );
    rig.wait_event(&event, "off air", |e| e["live"] == false)
        .await;
    // Neither through /webcast nor through webcaster-relay's approval again.
    let again = WebcastDj::go_live(rig.jars.addr, &mount, &ticket, 0xBB).await;
    assert_eq!(
        again.wait_closed(WAIT).await,
        Some((4403, "revoked".into()))
    );
    let (status, body) = post_form(
        &rig.jars.url("/jars/connect"),
        &[("auth", ticket.as_str()), ("mount", mount.as_str())],
    )
    .await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (403, "UnauthorizedConnectionException")
    );

    // The owner ends the event: their own show is cut as ended.
    let member = WebcastDj::go_live(rig.jars.addr, &mount, &rig.owner, 0xAA).await;
    assert!(hear_within(&rig, &mount, 4096, WAIT).await.len() >= 4096);
    let (status, body) = post_form(
        &rig.jars.url(&format!("/jars/events/{event}/end")),
        &[("auth", rig.owner.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        member.wait_closed(WAIT).await,
        Some((4410, "event_ended".into()))
    );
}

#[tokio::test]
async fn guests_are_approved_by_jars_connect_for_their_own_event_only() {
    let jars = TestServer::start("").await;
    let owner_id = jars.add_user("owner", "pw", false);
    let owner = jars.login("owner", "pw").await;
    let event = jars.create_event(&owner, "Guest", false).await;
    let other = jars.create_event(&owner, "Other", false).await;
    let mint = |kind: &'static str, event: String| {
        let (url, owner) = (jars.url("/jars/ticket"), owner.clone());
        async move {
            let (status, body) = post_form(
                &url,
                &[
                    ("auth", owner.as_str()),
                    ("mount", event.as_str()),
                    ("kind", kind),
                ],
            )
            .await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()["ticket"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let source = mint("source", event.clone()).await;
    let listener = mint("listener", event.clone()).await;
    let connect = |auth: String, mount: String| {
        let url = jars.url("/jars/connect");
        async move { post_form(&url, &[("auth", auth.as_str()), ("mount", mount.as_str())]).await }
    };
    assert_eq!(connect(source.clone(), format!("{event}.mp3")).await.0, 202);
    let (status, body) = connect(source.clone(), other.clone()).await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (403, "UnauthorizedConnectionException")
    );
    let (status, body) = connect(listener, event.clone()).await;
    assert_eq!(
        (status, error_name(&body).as_str()),
        (401, "InvalidTokenError")
    );
    let e: Value = reqwest::get(jars.url(&format!("/jars/events/{event}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["connected"], true);
    assert_eq!(
        e["connected_by"], owner_id,
        "the member who minted the ticket"
    );
    let decisions = |reason: &str| {
        jars.state
            .metrics
            .auth_decisions
            .with_label_values(&["connect", "deny", reason])
            .get()
    };
    assert_eq!(decisions("wrong_event"), 1);
    assert_eq!(decisions("wrong_token_kind"), 1);
    // Ended: no more approvals.
    let (status, _) = post_form(
        &jars.url(&format!("/jars/events/{event}/end")),
        &[("auth", owner.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(connect(source, event).await.0, 404);
}

#[cfg_attr(
    not(jars_has = "icecast2"),
    ignore = "needs icecast2, not found when the tests were built (apt-get install icecast2, then touch build.rs)"
)]
#[tokio::test]
async fn webcast_is_not_found_unless_configured_and_wants_its_subprotocol() {
    let jars = TestServer::start("").await;
    let id = uuid::Uuid::new_v4();
    let resp = reqwest::get(jars.url(&format!("/webcast/{id}.mp3")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let rig = rig().await;
    let plain = reqwest::get(rig.jars.url(&format!("/webcast/{id}.mp3")))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400, "not a WebSocket upgrade");
    let resp = reqwest::get(rig.jars.url("/webcast/not-an-event"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        error_name(&resp.text().await.unwrap()),
        "InvalidIdentifierException"
    );
}

/// `seconds` of a sine as live WebM/Opus, as a browser's `MediaRecorder` makes it (a Segment
/// and Clusters of unknown size), from ffmpeg (with libopus).
fn live_webm(seconds: u32) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-c:a", "libopus", "-b:a", "64k", "-f", "webm", "-live", "1"])
        .args(["-cluster_time_limit", "500", "pipe:1"])
        .output();
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => o.stdout,
        _ => panic!("ffmpeg with libopus failed to make a WebM stream"),
    }
}

#[cfg_attr(
    not(all(jars_has = "icecast2", jars_has = "ffmpeg")),
    ignore = "needs icecast2 and ffmpeg, not both found when the tests were built (apt-get install icecast2 ffmpeg, then touch build.rs)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browsers_webm_survives_an_icecast_restart_starting_with_its_header() {
    let webm = live_webm(40);
    let mut rig = rig().await;
    let event = rig.jars.create_event(&rig.owner, "WebM", false).await;
    let hello = serde_json::json!({"type": "hello", "data": {
        "mime": "audio/webm;codecs=opus", "password": rig.owner, "audio": {"bitrate": 64}}});
    // In real time: 64 kbit/s is 1,600 bytes every 200 ms.
    let chunks: Vec<Vec<u8>> = webm.chunks(1600).map(<[u8]>::to_vec).collect();
    let _dj = WebcastDj::connect(
        rig.jars.addr,
        &event,
        Some(hello.to_string()),
        chunks.into_iter(),
        Duration::from_millis(200),
    )
    .await;
    const EBML: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
    let listen = |rig: &Rig| {
        let url = stream_url(rig, &event);
        async move {
            let started = Instant::now();
            loop {
                let resp = reqwest::get(&url).await.unwrap();
                if resp.status() == 200 {
                    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
                    let mut resp = resp;
                    let mut heard = Vec::new();
                    while heard.len() < 4096 {
                        let chunk = tokio::time::timeout(WAIT, resp.chunk()).await;
                        match chunk {
                            Ok(Ok(Some(c))) => heard.extend_from_slice(&c),
                            _ => break,
                        }
                    }
                    return (kind, heard);
                }
                assert!(started.elapsed() < WAIT, "no source on {url}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (kind, heard) = listen(&rig).await;
    assert_eq!(
        kind, "audio/webm",
        "Icecast's WebM handler, not the generic one"
    );
    assert!(
        heard.len() >= 4096 && heard.starts_with(&EBML),
        "{:02x?}",
        &heard[..heard.len().min(8)]
    );

    tokio::task::block_in_place(|| rig.icecast.restart());
    let (kind, heard) = listen(&rig).await;
    assert_eq!(kind, "audio/webm");
    assert!(
        heard.len() >= 4096 && heard.starts_with(&EBML),
        "a late listener after the restart gets the stream's header: {:02x?}",
        &heard[..heard.len().min(8)]
    );
    // The stream went on from a cluster: Icecast found one after the header.
    let cluster = [0x1F, 0x43, 0xB6, 0x75];
    assert!(heard.windows(4).any(|w| w == cluster), "no cluster heard");
}

/// The example `jars.toml` offers the endpoint with the relay's trusted credentials.
#[test]
fn the_example_config_offers_webcast_as_a_trusted_source() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/icecast-examples/jars.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config =
        jars::config::Config::from_toml_str(&text, &jars::config::Overrides::default()).unwrap();
    let webcast = config.webcast.as_ref().expect("[webcast] in the example");
    assert_eq!(webcast.icecast_addr, "127.0.0.1:8000");
    assert!(config
        .icecast
        .trusted_sources
        .iter()
        .any(|t| t.user == webcast.user && t.password == webcast.password));
    let described = config.describe();
    assert!(described.contains("webcast.password"), "{described}");
    assert!(!described.contains(&webcast.password), "{described}");
}

/// An Icecast that takes the source and then reads nothing (a hostile or stuck upstream).
async fn stuck_icecast() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
            held.push(s);
        }
    });
    (port, task)
}

#[tokio::test]
async fn a_stuck_icecast_never_makes_jars_hold_more_than_its_buffer() {
    let (port, _icecast) = stuck_icecast().await;
    let jars = TestServer::start(&rig_config(&format!(
        "[webcast]\nicecast_url = \"http://127.0.0.1:{port}\"\nuser = \"{RELAY_USER}\"\n\
         password = \"{RELAY_PASS}\"\nbuffer = \"5s\"\n"
    )))
    .await;
    jars.add_user("owner", "pw", false);
    let owner = jars.login("owner", "pw").await;
    let event = jars.create_event(&owner, "Stuck", false).await;
    let hello = serde_json::json!({"type": "hello", "data": {
        "mime": "audio/mpeg", "password": owner, "audio": {"bitrate": 128}}});
    // 12.8 MB in 2 s, far more than Icecast's socket and jars' 80 kB buffer hold.
    const FRAME: usize = 64 * 1024;
    const FRAMES: usize = 200;
    let dj = WebcastDj::connect(
        jars.addr,
        &event,
        Some(hello.to_string()),
        std::iter::repeat_n(vec![0u8; FRAME], FRAMES),
        Duration::from_millis(10),
    )
    .await;
    let m = &jars.state.metrics.webcast;
    let sent = (FRAME * FRAMES) as u64;
    let started = Instant::now();
    // Everything the DJ sent was either written to Icecast's socket, dropped, or is held.
    let held = loop {
        let held = sent.saturating_sub(m.bytes.get() + m.dropped_bytes.get());
        if held <= 80_000 + 2 * FRAME as u64 || started.elapsed() > WAIT {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        held <= 80_000 + 2 * FRAME as u64,
        "jars holds {held} bytes (written {}, dropped {})",
        m.bytes.get(),
        m.dropped_bytes.get()
    );
    eprintln!(
        "sent {sent}, written to the stuck Icecast {}, dropped {}, held {held}",
        m.bytes.get(),
        m.dropped_bytes.get()
    );
    assert!(
        m.dropped_bytes.get() > sent / 4,
        "{}",
        m.dropped_bytes.get()
    );
    assert_eq!(dj.closed(), None, "the DJ is never slowed or cut for it");
    assert_eq!(m.sessions.get(), 1);
}
