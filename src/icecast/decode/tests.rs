//! The callback decoder on Icecast 2.4.4's captured bodies and on malformed ones.
use super::*;

const PREFIXES: [&str; 2] = ["ClientHeader.", "ClientHeader-"];

/// The bodies of every request in the captured fixture file.
fn fixture_bodies() -> Vec<String> {
    let text = include_str!("../../../tests/fixtures/icecast-2.4.4-callbacks.txt");
    text.split("\n---\n")
        .filter_map(|req| {
            let request = &req[req.find("POST ")?..];
            let (_head, body) = request.split_once("\n\n")?;
            Some(body.trim().to_string())
        })
        .collect()
}

#[test]
fn decodes_every_captured_request() {
    let bodies = fixture_bodies();
    assert_eq!(bodies.len(), 13);
    let decoded: Vec<Callback> = bodies
        .iter()
        .map(|b| Callback::decode(b.as_bytes(), &PREFIXES).unwrap())
        .collect();
    let actions: Vec<&str> = decoded.iter().map(Callback::action).collect();
    assert_eq!(
        actions,
        [
            "stream_auth",
            "mount_add",
            "listener_add",
            "listener_remove",
            "listener_add",
            "mount_remove",
            "stream_auth",
            "mount_add",
            "listener_add",
            "listener_remove",
            "listener_add",
            "listener_remove",
            "mount_remove",
        ]
    );
    match &decoded[0] {
        Callback::StreamAuth {
            mount,
            ip,
            credentials,
            admin,
            origin,
        } => {
            assert_eq!(mount.path(), "/live");
            assert_eq!(ip, "127.0.0.1");
            assert_eq!(credentials.user, "dj123");
            assert_eq!(credentials.pass, "eyJfake.jwt.token");
            assert!(!admin);
            assert_eq!(origin.port, "8000");
        }
        other => panic!("{other:?}"),
    }
    match &decoded[2] {
        Callback::ListenerAdd {
            mount,
            client,
            headers,
            agent,
            ..
        } => {
            assert_eq!(mount.path(), "/live");
            assert_eq!(mount.param("token").as_deref(), Some("abc.def.ghi"));
            assert_eq!(mount.param("x").as_deref(), Some("1"));
            assert_eq!(client, "1");
            assert_eq!(
                header(headers, "Referer"),
                Some("http://example.org/player")
            );
            assert_eq!(header(headers, "x-forwarded-for"), Some("1.2.3.4"));
            assert_eq!(header(headers, "agent"), None);
            assert_eq!(agent.and_then(|a| a.text()).as_deref(), Some("curl/7.88.1"));
        }
        other => panic!("{other:?}"),
    }
    match &decoded[3] {
        Callback::ListenerRemove {
            duration, client, ..
        } => {
            assert_eq!(*duration, Some(2));
            assert_eq!(client, "1");
        }
        other => panic!("{other:?}"),
    }
    // The listener with Basic credentials and a query value holding an escaped space.
    match &decoded[8] {
        Callback::ListenerAdd {
            mount,
            credentials,
            origin,
            ..
        } => {
            assert_eq!(credentials.user, "bob");
            assert_eq!(credentials.pass, "s3cr3t pw");
            assert_eq!(mount.param("x").as_deref(), Some("1 2"));
            assert_eq!(mount.param("token").as_deref(), Some("abc"));
            assert_eq!(origin.server, "ice.example-host.org");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn icecast_kh_escaped_actions_and_malformed_bodies() {
    let kh =
        b"action=listener%5fadd&server=x&port=1&client=9&mount=%2fa&user=&pass=&ip=1%2e2%2e3%2e4";
    assert_eq!(
        Callback::decode(kh, &PREFIXES).unwrap().action(),
        "listener_add"
    );
    assert_eq!(
        Callback::decode(b"mount=%2fa", &PREFIXES),
        Err(DecodeError::MissingAction)
    );
    assert_eq!(
        Callback::decode(b"action=listener_fly&mount=%2fa", &PREFIXES),
        Err(DecodeError::UnknownAction)
    );
    assert_eq!(
        Callback::decode(b"action=mount_add", &PREFIXES),
        Err(DecodeError::MissingField("mount"))
    );
    assert_eq!(
        Callback::decode(b"action=listener_add&mount=%2fa", &PREFIXES),
        Err(DecodeError::MissingField("client"))
    );
    assert_eq!(
        Callback::decode(b"action=mount_add&mount=%ff", &PREFIXES),
        Err(DecodeError::Encoding)
    );
    // A field name escaped is still that field.
    assert_eq!(
        Callback::decode(b"%61ction=mount%5fadd&m%6funt=%2fa", &PREFIXES)
            .unwrap()
            .mount()
            .path(),
        "/a"
    );
    let admin = b"action=stream_auth&mount=%2fa&ip=&server=x&port=1&user=&pass=&admin=1";
    match Callback::decode(admin, &PREFIXES).unwrap() {
        Callback::StreamAuth {
            admin, credentials, ..
        } => {
            assert!(admin);
            assert!(credentials.pass.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decodes_only_what_the_action_reads_and_borrows_what_is_unescaped() {
    // Junk in `agent` is dropped, it does not refuse the callback. A forwarded header is read.
    let body = b"action=listener_add&server=s&port=1&client=7&mount=%2fa%3fx%3d%25ff%26token%3dt%2e1&user=&pass=&ip=1&agent=%ff";
    let cb = Callback::decode(body, &PREFIXES).unwrap();
    let Callback::ListenerAdd {
        mount,
        client,
        agent,
        ..
    } = &cb
    else {
        panic!("{cb:?}")
    };
    assert_eq!(agent.and_then(|a| a.text()), None);
    assert!(matches!(client, Cow::Borrowed("7")));
    assert_eq!(mount.path(), "/a");
    assert_eq!(mount.query(), "x=%ff&token=t.1");
    // A parameter that is not UTF-8 is absent; the others are still there.
    assert_eq!(mount.param("x"), None);
    assert_eq!(mount.param("token").as_deref(), Some("t.1"));
    assert_eq!(mount.param("missing"), None);
    let bad_header = b"action=listener_add&client=7&mount=%2fa&clientheader.referer=%ff";
    assert_eq!(
        Callback::decode(bad_header, &PREFIXES),
        Err(DecodeError::Encoding)
    );
    // The last of repeated fields wins; empty parameters count as absent.
    let m = Mount::new("/a?token=1&token=&token=2&jwt=");
    assert_eq!(m.param("token").as_deref(), Some("2"));
    assert_eq!(m.param("jwt"), None);
    assert_eq!(Mount::new("/a").query(), "");
}

#[test]
fn event_mounts() {
    let id = "5e0b9230-086c-406f-a26c-13ff3a8d3880";
    for path in [
        format!("/{id}"),
        format!("/{id}.mp3"),
        format!("/{id}.OGG"),
        format!("/{id}.opus"),
    ] {
        let m = Mount::new(format!("{path}?token=x"));
        assert_eq!(m.event_id().unwrap().to_string(), id, "{path}");
    }
    for path in [
        "/live".to_string(),
        format!("/{id}.exe"),
        id.to_string(),
        format!("/{id}/x"),
        "/5e0b9230-086c-106f-a26c-13ff3a8d3880".to_string(),
        "/5e0b9230086c406fa26c13ff3a8d3880".to_string(),
        "/admin/stats".to_string(),
    ] {
        assert_eq!(Mount::new(path.as_str()).event_id(), None, "{path}");
    }
}
