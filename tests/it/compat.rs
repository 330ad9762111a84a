//! Drop-in compatibility with the original JARS (Python/Tornado 6, PyJWT 1.7.1), issue 13: one
//! table of requests, each with the error name the original answered (or its success) and
//! what jars answers. Where jars stays deliberately different, docs/api.md's "Differences from
//! the original JARS" says why; those rows are marked `differs`.

use std::net::SocketAddr;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use crate::support::{self, client, error_name, TestServer};

/// Signs arbitrary claims with the server's own private key.
fn sign(server: &TestServer, claims: &Value) -> String {
    let pem = std::fs::read(server.data_path("jwt-private.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn claims(sub: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({"iss": "jars", "sub": sub, "iat": now, "exp": now + 3600, "access_level": "STANDARD_USER"})
}

/// A urlencoded POST to `path` from `client` (sent as `X-Forwarded-For`; the server trusts
/// loopback proxies).
fn form(server: &TestServer, path: &str, body: &str, from: &str) -> reqwest::RequestBuilder {
    client()
        .post(server.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-for", from)
        .body(body.to_string())
}

/// A `multipart/form-data` POST, byte for byte as a browser's `FormData` sends it.
fn multipart(server: &TestServer, path: &str, fields: &[(&str, &[u8])]) -> reqwest::RequestBuilder {
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    client()
        .post(server.url(path))
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("x-forwarded-for", "198.51.100.7")
        .body(body)
}

/// A fake MyRadio that answers every call with `body`.
async fn myradio_answering(body: &'static str) -> SocketAddr {
    let app = axum::Router::new().fallback(move || async move { body });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn myradio_server(api_url: &str) -> TestServer {
    TestServer::start(&format!(
        "[identity]\nbackend = \"myradio\"\n[identity.myradio]\napi_url = \"{api_url}\"\n\
         api_key = \"k\"\ntimeout = \"1s\"\n"
    ))
    .await
}

/// `jars_store_errors_total{op="create"}`.
fn store_create_errors(server: &TestServer) -> u64 {
    let errors = &server.state.metrics.store_errors;
    errors.with_label_values(&["create"]).get()
}

const LIMITS: &str = "[limits]\ntoken_per_minute = 10\ntoken_burst = 3\n\
                      trusted_proxies = [\"127.0.0.0/8\"]\n";

/// What the original answered: its error name, or its success status.
const CREATED: &str = "(201 Created)";
const ACCEPTED: &str = "(202 Accepted)";
const TOKEN: &str = "(200 token)";

#[tokio::test]
async fn requests_of_the_originals_clients_get_the_originals_answers() {
    let server = TestServer::start(LIMITS).await;
    let owner = server.add_user("owner", "pw", false);
    server.add_user("member", "member-pw", false);
    server.add_user("victim", "victim-pw", false);
    let token = sign(&server, &claims(owner));
    let event = server.create_event(&token, "event", false).await;

    // Item 8, set up for the table: `member` logs in from home, then others guess at her
    // name from many addresses; nobody has logged in as `victim`, guessed the same way.
    let home = "2001:db8:1:1::10";
    let login = |user: &str, pw: &str, from: &str| {
        form(
            &server,
            "/jars/token",
            &format!("user={user}&password={pw}"),
            from,
        )
    };
    assert_eq!(
        login("member", "member-pw", home)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for i in 0..10 {
        for user in ["member", "victim"] {
            login(user, "guess", &format!("203.0.113.{i}"))
                .send()
                .await
                .unwrap();
        }
    }

    let down = myradio_server("http://127.0.0.1:9/api/v2/").await;
    let not_json = myradio_server(&format!(
        "http://{}/api/v2/",
        myradio_answering("<html>502 Bad Gateway</html>").await
    ))
    .await;

    let bad = "not-a-jwt";
    let with_aud = sign(&server, &{
        let mut c = claims(owner);
        c["aud"] = json!("another-service");
        c
    });
    let without = |claim: &str| {
        let mut c = claims(owner);
        c.as_object_mut().unwrap().remove(claim);
        sign(&server, &c)
    };
    let long_title = "t".repeat(256);
    let create = |body: &str| form(&server, "/jars/create", body, "198.51.100.1");
    let connect = |body: &str| form(&server, "/jars/connect", body, "198.51.100.1");
    // Each from an address of its own: every attempt counts against its address's limit.
    let token_req = |body: &str, n: u8| {
        form(
            &server,
            "/jars/token",
            body,
            &format!("198.51.100.{}", 20 + n),
        )
    };
    let good_create =
        |extra: &str| create(&format!("auth={token}&description=d&private=false&{extra}"));
    let private = |v: &str| create(&format!("auth={token}&title=t&description=d&private={v}"));
    let big = "p".repeat(17 * 1024);

    #[rustfmt::skip]
    let table: Vec<(&str, reqwest::RequestBuilder, &str, u16, &str)> = vec![
        // 3. Tornado's argument rules: empty is a value, surrounding space and a trailing newline
        // are stripped, controls become spaces, multipart bodies are forms.
        ("3 empty title", good_create("title="), CREATED, 201, ""),
        ("3 empty description", create(&format!("auth={token}&title=t&description=&private=0")), CREATED, 201, ""),
        ("3 empty password", token_req("user=owner&password=", 1), "NoUserException", 401, "NoUserException"),
        ("3 key without =", token_req("user=owner&password", 2), "NoUserException", 401, "NoUserException"),
        ("3 absent password", token_req("user=owner", 3), "MissingArgumentError", 400, "MissingArgumentError"),
        ("3 empty auth", create("auth=&title=t&description=d&private=1"), "DecodeError", 401, "DecodeError"),
        ("3 empty mount", connect(&format!("auth={token}&mount=")), "InvalidIdentifierException", 400, "InvalidIdentifierException"),
        ("3 spaced user", token_req("user=+owner+&password=pw", 4), TOKEN, 200, ""),
        ("3 token + newline", connect(&format!("auth={token}%0A&mount={event}")), ACCEPTED, 202, ""),
        ("3 tab-padded mount", connect(&format!("auth={token}&mount=%09{event}%20")), ACCEPTED, 202, ""),
        ("3 multipart token", multipart(&server, "/jars/token", &[("user", b"owner"), ("password", b"pw")]), TOKEN, 200, ""),
        ("3 multipart create", multipart(&server, "/jars/create", &[("auth", token.as_bytes()), ("title", b"t"), ("description", b"d"), ("private", b"true")]), CREATED, 201, ""),
        ("3 multipart connect", multipart(&server, "/jars/connect", &[("auth", token.as_bytes()), ("mount", event.as_bytes())]), ACCEPTED, 202, ""),
        // Only arguments read must decode (Tornado decoded an argument when a handler read it).
        ("3 junk=%FF create", good_create("title=t&junk=%FF"), CREATED, 201, ""),
        ("3 junk=%FF connect", connect(&format!("junk=%FF&auth={token}&mount={event}")), ACCEPTED, 202, ""),
        ("3 junk=%FF token", token_req("user=owner&password=pw&junk=%FF%FE", 7), TOKEN, 200, ""),
        ("3 multipart junk", multipart(&server, "/jars/connect", &[("auth", token.as_bytes()), ("junk", b"\xff\xfe"), ("mount", event.as_bytes())]), ACCEPTED, 202, ""),
        ("3 title=%FF", good_create("title=%FF"), "UnicodeDecodeError (HTTP 400)", 400, "InvalidArgumentError"),
        // 4. A NUL in a title is a space, not an outage.
        ("4 NUL in title", good_create("title=a%00b%1Fc"), CREATED, 201, ""),
        // 5. The token's error wins over the other arguments'.
        ("5 bad token, bad private", create(&format!("auth={bad}&title=t&description=d&private=perhaps")), "DecodeError", 401, "DecodeError"),
        ("5 bad token, long title", create(&format!("auth={bad}&title={long_title}&description=d&private=1")), "DecodeError", 401, "DecodeError"),
        // ...on /jars/connect. /jars/create read title, description and private first.
        ("5 bad token, no title", create(&format!("auth={bad}&description=d&private=f")), "MissingArgumentError", 400, "MissingArgumentError"),
        ("5 bad token, no private", create(&format!("auth={bad}&title=t&description=d")), "MissingArgumentError", 400, "MissingArgumentError"),
        ("5 no token, bad private", create("title=t&description=d&private=perhaps"), "MissingArgumentError", 400, "MissingArgumentError"),
        ("5 bad token, no mount", connect(&format!("auth={bad}")), "DecodeError", 401, "DecodeError"),
        ("5 bad token, bad mount", connect(&format!("auth={bad}&mount=i-love-lamp")), "DecodeError", 401, "DecodeError"),
        ("5 no token, bad mount", connect("mount=i-love-lamp"), "MissingArgumentError", 400, "MissingArgumentError"),
        ("5 title before private", create(&format!("auth={token}&description=d&private=perhaps")), "MissingArgumentError", 400, "MissingArgumentError"),
        // 6. A token minted for another audience.
        ("6 aud, none configured", connect(&format!("auth={with_aud}&mount={event}")), "InvalidAudienceError", 401, "InvalidAudienceError"),
        // 7. PostgreSQL's boolean spellings.
        ("7 private=tr", private("tr"), CREATED, 201, ""),
        ("7 private=fal", private("fal"), CREATED, 201, ""),
        ("7 private=ye", private("ye"), CREATED, 201, ""),
        ("7 private=of", private("of"), CREATED, 201, ""),
        ("7 private=+OFF+", private("+OFF+"), CREATED, 201, ""),
        // What PostgreSQL refused, by psycopg2's names: a bad boolean before a long text.
        ("7 private=o", private("o"), "InvalidTextRepresentation (500)", 400, "InvalidTextRepresentation"),
        ("7 private=", private(""), "InvalidTextRepresentation (500)", 400, "InvalidTextRepresentation"),
        ("7 long title", good_create(&format!("title={long_title}")), "StringDataRightTruncation (500)", 400, "StringDataRightTruncation"),
        ("7 long description", create(&format!("auth={token}&title=t&description={long_title}&private=0")), "StringDataRightTruncation (500)", 400, "StringDataRightTruncation"),
        ("7 long title, private=o", create(&format!("auth={token}&title={long_title}&description=d&private=o")), "InvalidTextRepresentation (500)", 400, "InvalidTextRepresentation"),
        // 8. Login lockout: failures from others cannot lock a member out of her known address,
        // yet one name guessed from many addresses is slowed.
        ("8 member at home", login("member", "member-pw", "2001:db8:1:1::99"), TOKEN, 200, ""),
        ("8 victim, guessed", login("victim", "victim-pw", "192.0.2.77"), "(none: no limit)", 429, "TooManyRequests"),
        // 9. Kept differences (docs/api.md).
        ("9 differs: no exp", connect(&format!("auth={}&mount={event}", without("exp"))), ACCEPTED, 401, "DecodeError"),
        ("9 differs: no iss", connect(&format!("auth={}&mount={event}", without("iss"))), ACCEPTED, 401, "DecodeError"),
        ("9 differs: status", token_req("user=owner&password=wrong", 5), "NoUserException (500)", 401, "NoUserException"),
        ("9 differs: MyRadio down", form(&down, "/jars/token", "user=a&password=b", "198.51.100.3"), "ConnectionError", 502, "MyRadioServiceFailureException"),
        ("9 differs: MyRadio not JSON", form(&not_json, "/jars/token", "user=a&password=b", "198.51.100.3"), "JSONDecodeError", 502, "MyRadioServiceFailureException"),
        ("9 differs: 17 KiB body", token_req(&format!("user=owner&password={big}"), 6), "NoUserException", 413, "PayloadTooLarge"),
        ("9 differs: /mount", connect(&format!("auth={token}&mount=/{event}")), "InvalidIdentifierException", 202, ""),
        ("9 differs: MOUNT", connect(&format!("auth={token}&mount={}", event.to_uppercase())), "InvalidIdentifierException", 202, ""),
        ("9 differs: {mount}", connect(&format!("auth={token}&mount=%7B{event}%7D")), "InvalidIdentifierException", 202, ""),
    ];

    let mut failures = Vec::new();
    for (row, request, original, status, name) in table {
        let resp = request.send().await.unwrap();
        let got_status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        let got_name = if name.is_empty() {
            String::new()
        } else {
            error_name(&body)
        };
        if (got_status, got_name.as_str()) != (status, name) {
            failures.push(format!(
                "{row}: original {original}; want {status} {name:?}, got {got_status} {body}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Item 4's value and metric: the NUL became a space and nothing was counted as an outage.
    let events = client()
        .get(server.url("/jars/events"))
        .send()
        .await
        .unwrap();
    let events: Value = events.json().await.unwrap();
    let titles: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["title"].as_str())
        .collect();
    assert!(titles.contains(&"a b c"), "{titles:?}");
    assert!(
        titles.contains(&""),
        "the empty title was stored: {titles:?}"
    );
    assert_eq!(store_create_errors(&server), 0);
}

/// Item 4 behind the HTTP layer: a value PostgreSQL refuses (a NUL byte, SQLSTATE 22021) is
/// the client's error, not an outage: 400, and not counted in `jars_store_errors_total`.
#[cfg_attr(
    not(jars_has = "postgres"),
    ignore = "needs PostgreSQL: none answered at DATABASE_URL or 127.0.0.1:5432 when the tests were built (start it, then touch build.rs)"
)]
#[tokio::test]
async fn a_value_postgresql_refuses_is_invalid_input_not_an_outage() {
    use jars::http::ApiError;
    use jars::store::{NewEvent, StoreError};
    let admin = support::pg::admin_url();
    let db = support::pg::TempDb::create(&admin).await;
    let server = TestServer::start(&format!("[store]\nurl = \"{}\"\n", db.url)).await;
    let refused = server
        .state
        .store
        .create(NewEvent {
            created_by: 1,
            title: "a\0b".into(),
            description: "d".into(),
            private: false,
            lifetime: std::time::Duration::from_secs(60),
            now: Utc::now(),
            max_listeners: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::InvalidInput(_)),
        "{refused:?}"
    );
    let api = ApiError::from(refused);
    assert_eq!(
        (api.status().as_u16(), api.name()),
        (400, "InvalidArgumentError")
    );
    assert_eq!(store_create_errors(&server), 0);
    // The store is still up: the same request with the NUL cleaned as Tornado did is stored.
    let dj = server.add_user("dj", "pw", false);
    let token = sign(&server, &claims(dj));
    let (status, body) = support::post_form(
        &server.url("/jars/create"),
        &[
            ("auth", &token),
            ("title", "a\0b"),
            ("description", "d"),
            ("private", "f"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
}
