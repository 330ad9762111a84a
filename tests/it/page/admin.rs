//! In the browser: every field labelled; an admin's ban list (add, refuse a bad address in words, remove) and the
//! form that revokes one listener link; a member's page has no admin section.

use super::*;
use support::post_form;

#[cfg_attr(
    not(all(jars_has = "chromium", jars_has = "chromedriver")),
    ignore = "needs chromium and chromedriver, not found when the tests were built (apt-get install chromium chromium-driver, then touch build.rs)"
)]
#[tokio::test]
async fn an_admin_adds_and_removes_bans_and_revokes_a_link() {
    let server = TestServer::start("").await;
    server.add_user("boss", "boss-password", true);
    server.add_user("dj", "dj-password", false);
    let dj = server.login("dj", "dj-password").await;
    let event = server.create_event(&dj, "Late show", true).await;
    let (status, body) = post_form(
        &server.url("/jars/ticket"),
        &[("auth", dj.as_str()), ("mount", event.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ticket: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_string();

    let b = open_page(&server).await;
    b.log_in("dj", "dj-password").await;
    b.wait_shown("#admin", false).await;
    b.click("#logout").await;
    b.log_in("boss", "boss-password").await;
    b.wait_shown("#admin", true).await;
    assert_eq!(b.text("#who-admin").await, "(admin)");
    b.find(&format!(
        "#all-events article.event[data-event-id=\"{event}\"]"
    ))
    .await;
    // Every field of the page, the event cards' included, has a label.
    let unlabelled = b
        .run(
            "return [...document.querySelectorAll('input, select, textarea')]
               .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label'))
               .map((e) => e.outerHTML)",
        )
        .await;
    assert_eq!(unlabelled, serde_json::json!([]), "fields without a label");
    let fields = b
        .run("return document.querySelectorAll('input, select, textarea').length")
        .await;
    assert!(
        fields.as_u64().unwrap() > 15,
        "the cards' fields are there: {fields}"
    );
    b.wait_text("#bans", "an empty ban list", |t| t == "No bans.")
        .await;

    b.fill("#ban-ip", "not an address").await;
    b.click("#ban-form button[type=submit]").await;
    b.wait_text("#bans + .message", "a refused ban", |t| {
        t.starts_with("Error: One of the values is not valid")
    })
    .await;

    b.fill("#ban-ip", "203.0.113.0/24").await;
    b.fill("#ban-for", "24h").await;
    b.fill("#ban-reason", "stream ripping").await;
    b.click("#ban-form button[type=submit]").await;
    b.wait_text("#bans caption", "one ban", |t| t == "1 ban")
        .await;
    let row = b.text("#bans tbody tr").await;
    assert!(
        row.contains("203.0.113.0/24")
            && row.contains("stream ripping")
            && row.contains("every event"),
        "{row}"
    );
    b.click("#bans .unban").await;
    b.wait_text("#bans", "the ban removed", |t| t == "No bans.")
        .await;

    // Revoking by the whole link: jars counts the ticket it revoked.
    b.fill(
        "#revoke-ticket",
        &format!("https://radio.example/{event}.mp3?token={ticket}"),
    )
    .await;
    b.click("#revoke-form button[type=submit]").await;
    b.wait_text("#revoke-form + .message", "a revoked link", |t| {
        t == "Revoked the link."
    })
    .await;
    assert_eq!(super::alert(&b).await, "");
    b.close().await;
}
