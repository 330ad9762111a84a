//! Issue 28, item 10: a ban of an IPv4-mapped range (`::ffff:203.0.114.0/120`) was accepted
//! and banned nothing, since Icecast reports IPv4 listeners as IPv4. It now bans the IPv4
//! addresses it maps, and says so: the ban is stored as the IPv4 range.

use super::*;

fn listener_add(event: &str, ip: &str) -> String {
    crate::support::callback_body(&[
        ("action", "listener_add"),
        ("server", "x"),
        ("port", "1"),
        ("client", "7"),
        ("mount", &format!("/{event}")),
        ("user", ""),
        ("pass", ""),
        ("ip", ip),
    ])
}

#[tokio::test]
async fn an_ipv4_mapped_range_bans_the_ipv4_addresses_it_maps() {
    let server = TestServer::start("").await;
    server.add_user("admin", "admin-pw", true);
    let admin = server.login("admin", "admin-pw").await;
    let event = server.create_event(&admin, "Public", false).await;
    assert!(callback_allows(&server, listener_add(&event, "203.0.114.9")).await);

    let (status, body) = post_form(
        &server.url("/jars/bans"),
        &[("auth", &admin), ("ip", "::ffff:203.0.114.0/120")],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ban: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ban["ip"], "203.0.114.0/24", "stored as the range it bans");

    for (ip, banned) in [
        ("203.0.114.9", true),
        ("203.0.114.255", true),
        ("::ffff:203.0.114.1", true),
        ("203.0.115.9", false),
        ("2001:db8::9", false),
    ] {
        assert_eq!(
            !callback_allows(&server, listener_add(&event, ip)).await,
            banned,
            "{ip}"
        );
    }
}
