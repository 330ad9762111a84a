//! Issue 28, item 9: browser-shaped callbacks. With no callback credentials set (as when
//! starting from the original's `config.json`), a cross-site form POST from a browser on the
//! host was obeyed: `mount_add` marked an event live and `listener_add` faked listeners. A
//! callback carrying `Origin` or `Sec-Fetch-Site` is now refused whatever else it carries;
//! running without credentials is warned of at start and shown in `/readyz`.

use super::*;
use crate::logs::Captured;

/// Sends a callback with `headers` added, as a browser's form post would carry them.
async fn browser_post(server: &TestServer, body: String, headers: &[(&str, &str)]) -> bool {
    let mut req = client()
        .post(server.url("/icecast/auth"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    resp.headers().get("icecast-auth-user").is_some()
}

async fn event_view(server: &TestServer, event: &str) -> Value {
    let resp = client()
        .get(server.url(&format!("/jars/events/{event}")))
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_browsers_cross_site_post_is_never_obeyed() {
    let log = Captured::default();
    let _guard = log.start();
    let server = TestServer::start("").await;
    assert!(
        log.text().contains("[icecast] username/password are unset"),
        "no warning at start:\n{}",
        log.text()
    );
    let ready: Value = client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["callbacks"]["credentials"], "unset", "{ready}");

    server.add_user("dj", "dj-password", false);
    let dj = server.login("dj", "dj-password").await;
    let event = server.create_event(&dj, "Public", false).await;
    let mount = format!("/{event}");
    let mount_add = crate::support::callback_body(&[
        ("action", "mount_add"),
        ("mount", &mount),
        ("server", "localhost"),
        ("port", "8000"),
    ]);
    let listener_add = |client_id: &str| {
        crate::support::callback_body(&[
            ("action", "listener_add"),
            ("server", "localhost"),
            ("port", "8000"),
            ("client", client_id),
            ("mount", &mount),
            ("user", ""),
            ("pass", ""),
            ("ip", "192.0.2.1"),
        ])
    };
    let refused_before = bad_callers(&server);
    let browsers: [&[(&str, &str)]; 4] = [
        &[
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[
            ("sec-fetch-site", "same-site"),
            ("sec-fetch-mode", "navigate"),
        ],
    ];
    for (i, headers) in browsers.iter().enumerate() {
        assert!(
            !browser_post(&server, mount_add.clone(), headers).await,
            "{headers:?}"
        );
        assert!(
            !browser_post(&server, listener_add(&i.to_string()), headers).await,
            "{headers:?}"
        );
    }
    let view = event_view(&server, &event).await;
    assert_eq!(view["live"], false, "{view}");
    assert_eq!(view["listeners"], 0, "{view}");
    assert_eq!(bad_callers(&server) - refused_before, 8);

    // Icecast's own callbacks, from loopback, are still obeyed.
    assert!(browser_post(&server, mount_add, &[]).await);
    assert!(browser_post(&server, listener_add("9"), &[]).await);
    let view = event_view(&server, &event).await;
    assert_eq!(view["live"], true, "{view}");
    assert_eq!(view["listeners"], 1, "{view}");
}

#[tokio::test]
async fn with_credentials_readyz_says_so_and_browsers_are_still_refused() {
    let server =
        TestServer::start("[icecast]\nusername = \"icecast\"\npassword = \"cb-secret\"\n").await;
    let ready: Value = client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["callbacks"]["credentials"], "set", "{ready}");
    server.add_user("dj", "dj-password", false);
    let dj = server.login("dj", "dj-password").await;
    let event = server.create_event(&dj, "Public", false).await;
    let body = crate::support::callback_body(&[
        ("action", "mount_add"),
        ("mount", &format!("/{event}")),
        ("server", "localhost"),
        ("port", "8000"),
    ]);
    // A browser holding the credentials (cached Basic auth) is refused all the same.
    let resp = client()
        .post(server.url("/icecast/auth"))
        .basic_auth("icecast", Some("cb-secret"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("icecast-auth-user").is_none());
    assert_eq!(
        resp.headers()["icecast-auth-message"],
        "callback from a browser"
    );
    let resp = client()
        .post(server.url("/icecast/auth"))
        .basic_auth("icecast", Some("cb-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("icecast-auth-user").is_some());
}
