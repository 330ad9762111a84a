//! In the browser: refusals read as sentences, the login lives in sessionStorage only, and an
//! expired login sends the member back to the form.

use std::time::Duration;

use fantoccini::key::Key;

use super::*;

#[cfg_attr(
    not(all(jars_has = "chromium", jars_has = "chromedriver")),
    ignore = "needs chromium and chromedriver, not found when the tests were built (apt-get install chromium chromium-driver, then touch build.rs)"
)]
#[tokio::test]
async fn refusals_read_as_sentences_and_an_expired_login_returns_to_the_form() {
    let server = TestServer::start("").await;
    server.add_user("dj", "dj-password", false);
    let b = open_page(&server).await;
    b.wait_shown("#login", true).await;
    b.wait_shown("#member", false).await;

    b.fill("#login-user", "dj").await;
    b.fill("#login-password", "not-the-password").await;
    b.click("#login-form button[type=submit]").await;
    b.wait_text("#alert", "bad credentials", |t| {
        t == "Error: Wrong user name or password."
    })
    .await;
    b.wait_shown("#member", false).await;

    // By keyboard alone: from a fresh page, Tab past the skip link to the user name field,
    // type, Tab to the password, Enter.
    b.goto(&server.url("/")).await;
    b.wait_text("#updated", "the reloaded page", |t| {
        t.starts_with("Updated")
    })
    .await;
    b.press(&format!(
        "{tab}{tab}dj{tab}dj-password{enter}",
        tab = char::from(Key::Tab),
        enter = char::from(Key::Enter)
    ))
    .await;
    b.wait_shown("#member", true).await;
    assert_eq!(b.text("#who").await, "dj");
    let kept = b
        .run(
            "return [sessionStorage.getItem('jars.token') || '', document.cookie, \
             localStorage.length, location.href]",
        )
        .await;
    assert!(kept[0].as_str().unwrap().starts_with("eyJ"), "{kept}");
    assert_eq!(kept[1], "", "no cookie");
    assert_eq!(kept[2], 0, "nothing in localStorage");
    assert_eq!(
        kept[3].as_str().unwrap(),
        server.url("/"),
        "no token in the URL"
    );

    b.click("#create summary").await;
    b.fill("#create-title", "Night shift").await;
    b.fill("#create-description", "Until dawn").await;
    b.click("#create-form button[type=submit]").await;
    let card = "#my-events article.event";
    b.wait_text(&format!("{card} h3"), "the new event", |t| {
        t == "Night shift"
    })
    .await;
    assert_eq!(b.text(&format!("{card} .live-state")).await, "Not live");

    // A value jars refuses is said in words where it was typed.
    b.click(&format!("{card} details.listener-link summary"))
        .await;
    b.fill(&format!("{card} .link-ip"), "not-an-address").await;
    b.click(&format!("{card} .make-link")).await;
    b.wait_text(
        &format!("{card} details.listener-link .message"),
        "an invalid address",
        |t| t.starts_with("Error: One of the values is not valid"),
    )
    .await;
    assert_eq!(super::alert(&b).await, "", "nothing else went wrong");

    // A day later the login token has expired: the next refresh (every 5 s) is refused, and
    // the page says so and brings back the form.
    server.clock.advance(Duration::from_secs(25 * 3600));
    b.wait_text("#alert", "expired login", |t| {
        t == "Error: Your login has expired. Please log in again."
    })
    .await;
    b.wait_shown("#login", true).await;
    b.wait_shown("#member", false).await;
    let token = b.run("return sessionStorage.getItem('jars.token')").await;
    assert!(token.is_null(), "the token is forgotten: {token}");
    b.close().await;
}
