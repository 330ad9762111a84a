//! What a technician met in a first week with the command line (issue 29 #13): commands that
//! had nothing to do said they had done it, and two configuration errors gave no example.

use super::{assert_usage_error, jars, jars_stdin, stderr, stdout};

#[test]
fn report_end_and_migrate_say_what_is_true() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();

    // migrate on a new data dir creates the store, and says so; the second run finds it.
    let out = jars(p, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = stdout(&out);
    assert!(first.contains("created the store"), "{first}");
    assert!(!first.contains("up to date"), "{first}");
    let second = stdout(&jars(p, &["migrate"]));
    assert!(
        second.contains("up to date") && !second.contains("created"),
        "{second}"
    );

    let out = jars_stdin(
        p,
        &["user", "add", "root", "--password-stdin"],
        "root-password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = jars(
        p,
        &["event", "create", "--owner", "root", "--title", "Breakfast"],
    );
    let event = stdout(&out).trim().to_string();

    // A report for an event that does not exist is an error, not an empty table.
    let unknown = "5e0b9230-086c-406f-a26c-13ff3a8d3880";
    let out = jars(p, &["report", "--event", unknown]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("no event {unknown}")),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    // One that exists, without sessions: the (empty) table, and a line saying why it is empty.
    let out = jars(p, &["report", "--event", &event]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("EVENT"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no listener sessions"),
        "{}",
        stderr(&out)
    );

    // Ending an event twice: the second says it had already ended and changes nothing.
    let out = jars(p, &["event", "end", &event]);
    assert_eq!(
        stdout(&out).trim(),
        format!("ended event {event}"),
        "{}",
        stderr(&out)
    );
    let out = jars(p, &["event", "end", &event]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = stdout(&out);
    assert!(
        again.contains("had already ended at") && again.contains("nothing changed"),
        "{again}"
    );
    let out = jars(p, &["event", "end", unknown]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no event"), "{}", stderr(&out));
}

#[test]
fn configuration_errors_show_how_to_write_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("admin.toml"),
        "[[icecast.servers]]\nserver = \"localhost\"\nport = 8000\nadmin_url = \"127.0.0.1:8000\"\n\
         admin_user = \"admin\"\nadmin_password = \"not-the-example\"\n",
    )
    .unwrap();
    let out = jars(p, &["--config", "admin.toml", "check-config"]);
    assert_usage_error(&out, "admin_url");
    assert!(
        stderr(&out).contains("e.g. \"http://127.0.0.1:8000\""),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("not-the-example"),
        "{}",
        stderr(&out)
    );

    std::fs::write(p.join("lifetime.toml"), "[icecast]\nticket_lifetime = 6\n").unwrap();
    let out = jars(p, &["--config", "lifetime.toml", "check-config"]);
    assert_usage_error(&out, "ticket_lifetime");
    assert!(stderr(&out).contains("\"6h\""), "{}", stderr(&out));
    // The key is named, a value never (it may be a secret).
    std::fs::write(
        p.join("secret.toml"),
        "[icecast]\nusername = \"icecast\"\npassword = 12345678\n",
    )
    .unwrap();
    let out = jars(p, &["--config", "secret.toml", "check-config"]);
    assert_usage_error(&out, "line 3 (password)");
    assert!(!stderr(&out).contains("12345678"), "{}", stderr(&out));
}
