//! A real Icecast 2.4.4 for integration tests.
//!
//! [`Icecast::start`] runs `icecast2` from the station's example configuration,
//! `icecast-examples/icecast.xml`, after replacing a few of its literal default values
//! (port, jars URL, callback credentials, passwords, log directory). A replacement
//! target that is missing from the file is a panic, so the example and the tests cannot
//! drift apart.
//!
//! Clients speak raw HTTP over `tokio::net::TcpStream`, exactly as Icecast 2.4.4 expects:
//! [`start_source`] streams MPEG audio frames with an HTTP `PUT`, [`listen`] and
//! [`open_listener`] play a mount with a `GET`.
//!
//! Measured on Icecast 2.4.4 (Debian bookworm):
//! - Source `PUT` with `Expect: 100-continue`: after `stream_auth` allowed it, Icecast
//!   answers `HTTP/1.1 100 Continue` (with `Content-Length: 0`) immediately followed by
//!   `HTTP/1.0 200 OK`; without `Expect` only the `200 OK`. Denied: `HTTP/1.0 401
//!   Authentication Required`; mount already taken: `HTTP/1.0 403 Forbidden` ("Mountpoint
//!   in use"). Both are followed by a close.
//! - `audio/mpeg` goes through Icecast's generic format handler: the bytes are forwarded
//!   to listeners as they are.
//! - Listeners get `HTTP/1.0 200 OK`, then audio; a denied listener gets `401`, a listener
//!   of a mount nobody streams to gets `404` (after `listener_add` was asked).

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

/// Literal values of the example configuration that [`Icecast::start`] replaces.
pub const EXAMPLE_PORT: u16 = 8000;
pub const EXAMPLE_JARS_AUTH_URL: &str = "http://127.0.0.1:8888/icecast/auth";
pub const EXAMPLE_CALLBACK_USER: &str = "icecast";
pub const EXAMPLE_CALLBACK_PASSWORD: &str = "change-me-callback-secret";

/// Credentials the test Icecast is configured with.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "test-admin-password";
/// Icecast's global source password (used by mounts that are not event mounts).
pub const SOURCE_PASSWORD: &str = "test-source-password";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than Icecast's own 15 s callback timeout, so a slow auth answer is still seen.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(20);
const DEBIAN_BINARY: &str = "/usr/bin/icecast2";

/// The `icecast2` binary: `/usr/bin/icecast2`, else the first `icecast2` on `PATH`.
pub fn icecast_binary() -> Option<PathBuf> {
    let debian = PathBuf::from(DEBIAN_BINARY);
    if debian.is_file() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("icecast2"))
        .find(|candidate| candidate.is_file())
}

pub fn icecast_available() -> bool {
    icecast_binary().is_some()
}

/// Makes sure `icecast2` is here. A test that calls this is compiled `#[ignore]`d when it was
/// not as the tests were built (`build.rs`), so it runs only with it (or under `CI`, where it
/// must be there): a missing one is a failure that says what to do.
pub fn require_icecast() {
    assert!(
        icecast_available(),
        "icecast2 is not installed ({DEBIAN_BINARY} missing, none on PATH). Install it \
         (Debian/Ubuntu: apt-get install icecast2); without CI set, `touch build.rs` marks the \
         Icecast tests ignored at the next build"
    );
}

/// A running Icecast, killed on drop.
pub struct Icecast {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

impl Icecast {
    /// Starts Icecast from `icecast-examples/icecast.xml`, its callbacks pointing at
    /// `jars_auth_url` with the given Basic credentials, on a free 127.0.0.1 port.
    /// Panics (with Icecast's logs) if it does not accept connections within 10 s.
    pub fn start(jars_auth_url: &str, callback_user: &str, callback_password: &str) -> Icecast {
        Self::start_at(
            None,
            jars_auth_url,
            callback_user,
            callback_password,
            "icecast.xml",
            &[],
        )
    }

    /// Starts Icecast on `port` from `icecast-examples/<template>` (which has the same literal
    /// values as `icecast.xml`), each `(from, to)` of `extra` replaced too (exactly once).
    pub fn start_from(
        template: &str,
        port: u16,
        jars_auth_url: &str,
        callback_user: &str,
        callback_password: &str,
        extra: &[(&str, String)],
    ) -> Icecast {
        Self::start_at(
            Some(port),
            jars_auth_url,
            callback_user,
            callback_password,
            template,
            extra,
        )
    }

    /// [`Icecast::start`] on `port` (from [`free_port`]), for a jars whose config must name
    /// Icecast's address before Icecast starts (`[webcast] icecast_url`).
    pub fn start_on(
        port: u16,
        jars_auth_url: &str,
        callback_user: &str,
        callback_password: &str,
    ) -> Icecast {
        Self::start_at(
            Some(port),
            jars_auth_url,
            callback_user,
            callback_password,
            "icecast.xml",
            &[],
        )
    }

    fn start_at(
        fixed_port: Option<u16>,
        jars_auth_url: &str,
        callback_user: &str,
        callback_password: &str,
        template: &str,
        extra: &[(&str, String)],
    ) -> Icecast {
        let binary =
            icecast_binary().expect("icecast2 not installed: call require_icecast() first");
        let template_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("icecast-examples")
            .join(template);
        let template = fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));

        let mut last_failure = String::new();
        // A port picked free can be taken before Icecast binds it (tests run in parallel).
        for _attempt in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("jars-icecast-")
                .tempdir()
                .expect("create temp dir");
            let port = fixed_port.unwrap_or_else(free_port);
            let log_dir = dir.path().join("log");
            fs::create_dir(&log_dir).expect("create log dir");
            let run_as = if running_as_root() {
                Some(unprivileged_account())
            } else {
                None
            };
            if let Some(account) = &run_as {
                // Icecast drops to `account` before opening its logs: it must reach and
                // write the log directory.
                fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
                    .expect("chmod temp dir");
                std::os::unix::fs::chown(&log_dir, Some(account.uid), Some(account.gid))
                    .expect("chown log dir");
            }
            let mut config = test_config(
                &template,
                port,
                jars_auth_url,
                callback_user,
                callback_password,
                &log_dir,
                run_as.as_ref(),
            );
            for (from, to) in extra {
                config = replace_exact(&config, from, to, 1);
            }
            let config_path = dir.path().join("icecast.xml");
            fs::write(&config_path, config).expect("write icecast.xml");
            let stdout = fs::File::create(dir.path().join("stdout.log")).expect("stdout.log");
            let stderr = fs::File::create(dir.path().join("stderr.log")).expect("stderr.log");
            // Foreground (no -b): the child is Icecast itself, and so is what we kill.
            let child = Command::new(&binary)
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let mut icecast = Icecast { port, dir, child };
            match icecast.wait_until_listening() {
                Ok(()) => return icecast,
                Err(failure) => {
                    // A port taken in the meantime, or a crash while starting, is worth
                    // another try; anything else is a real problem.
                    let crashed = failure.contains("signal: 11");
                    last_failure = failure;
                    if !crashed
                        && !icecast
                            .console_output()
                            .contains("Could not create listener socket")
                    {
                        break;
                    }
                }
            }
        }
        panic!("Icecast did not start: {last_failure}");
    }

    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait icecast2") {
                return Err(format!(
                    "icecast2 exited with {status} before listening on port {}\n{}",
                    self.port,
                    self.diagnostics()
                ));
            }
            if StdTcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // Icecast 2.4.4 accepts before it has finished starting its threads, and a
                // request in that window can crash it (SIGSEGV, seen on a loaded machine):
                // give it a moment, then make sure it is still there.
                std::thread::sleep(Duration::from_millis(500));
                if let Some(status) = self.child.try_wait().expect("try_wait icecast2") {
                    return Err(format!(
                        "icecast2 exited with {status} right after it started listening\n{}",
                        self.diagnostics()
                    ));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "icecast2 did not accept connections on port {} within {:?}\n{}",
                    self.port,
                    STARTUP_TIMEOUT,
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        for name in ["stderr.log", "stdout.log", "log/error.log"] {
            let text = fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let _ = writeln!(out, "--- {name} (last 40 lines) ---\n{}", tail(&text, 40));
        }
        out
    }

    /// Kills Icecast (as a crash would: sources and listeners cut, no `mount_remove`) and
    /// starts it again on the same port with the same configuration and logs.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let binary = icecast_binary().expect("icecast2 installed");
        let log = |name: &str| {
            fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(self.dir.path().join(name))
                .expect("console log")
        };
        self.child = Command::new(&binary)
            .arg("-c")
            .arg(self.dir.path().join("icecast.xml"))
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        if let Err(failure) = self.wait_until_listening() {
            panic!("Icecast did not start again: {failure}");
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log/error.log")).unwrap_or_default()
    }

    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log/access.log")).unwrap_or_default()
    }

    /// What Icecast printed to stdout and stderr (start-up warnings, fatal errors).
    pub fn console_output(&self) -> String {
        let out = fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default();
        let err = fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        out + &err
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        // SIGKILL: a graceful stop takes Icecast 2.4.4 one to two seconds.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The account Icecast switches to when started as root.
pub struct Account {
    pub user: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
}

/// `icecast2` (Debian's account for Icecast, group `icecast`), else `nobody`.
fn unprivileged_account() -> Account {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = fs::read_to_string("/etc/group").unwrap_or_default();
    for user in ["icecast2", "nobody"] {
        let Some((uid, gid)) = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 || fields[0] != user {
                return None;
            }
            Some((
                fields[2].parse::<u32>().ok()?,
                fields[3].parse::<u32>().ok()?,
            ))
        }) else {
            continue;
        };
        let group = groups
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() > 2 && fields[2] == gid.to_string()).then(|| fields[0].to_string())
            })
            .unwrap_or_else(|| panic!("no group with gid {gid} (primary group of {user})"));
        return Account {
            user: user.to_string(),
            group,
            uid,
            gid,
        };
    }
    panic!("running as root, but neither user icecast2 nor nobody exists for Icecast to become");
}

/// Replaces `from` by `to`, panicking unless `from` occurs exactly `count` times.
fn replace_exact(text: &str, from: &str, to: &str, count: usize) -> String {
    let found = text.matches(from).count();
    assert_eq!(
        found, count,
        "icecast-examples/icecast.xml: expected {count} occurrence(s) of {from:?}, found {found}; \
         the example config and tests/it/support/icecast.rs have drifted apart"
    );
    text.replace(from, to)
}

fn test_config(
    template: &str,
    port: u16,
    jars_auth_url: &str,
    callback_user: &str,
    callback_password: &str,
    log_dir: &Path,
    run_as: Option<&Account>,
) -> String {
    let mut c = replace_exact(
        template,
        &format!("<port>{EXAMPLE_PORT}</port>"),
        &format!("<port>{port}</port>\n        <bind-address>127.0.0.1</bind-address>"),
        1,
    );
    // All five callbacks go to the one jars URL.
    c = replace_exact(
        &c,
        &format!(r#"value="{EXAMPLE_JARS_AUTH_URL}""#),
        &format!(r#"value="{}""#, xml_escape(jars_auth_url)),
        5,
    );
    c = replace_exact(
        &c,
        &format!(r#"<option name="username" value="{EXAMPLE_CALLBACK_USER}"/>"#),
        &format!(
            r#"<option name="username" value="{}"/>"#,
            xml_escape(callback_user)
        ),
        1,
    );
    c = replace_exact(
        &c,
        &format!(r#"<option name="password" value="{EXAMPLE_CALLBACK_PASSWORD}"/>"#),
        &format!(
            r#"<option name="password" value="{}"/>"#,
            xml_escape(callback_password)
        ),
        1,
    );
    c = replace_exact(
        &c,
        "<admin-user>admin</admin-user>",
        &format!("<admin-user>{ADMIN_USER}</admin-user>"),
        1,
    );
    c = replace_exact(
        &c,
        "<admin-password>change-me-admin-password</admin-password>",
        &format!("<admin-password>{ADMIN_PASSWORD}</admin-password>"),
        1,
    );
    c = replace_exact(
        &c,
        "<source-password>change-me-source-password</source-password>",
        &format!("<source-password>{SOURCE_PASSWORD}</source-password>"),
        1,
    );
    c = replace_exact(
        &c,
        "<logdir>/var/log/icecast2</logdir>",
        &format!("<logdir>{}</logdir>", log_dir.display()),
        1,
    );
    // Icecast 2.4.4 refuses to run as root ("You should not run icecast2 as root") unless
    // told whom to become.
    if let Some(account) = run_as {
        c = replace_exact(
            &c,
            "<chroot>0</chroot>",
            &format!(
                "<chroot>0</chroot>\n        <changeowner><user>{}</user><group>{}</group></changeowner>",
                account.user, account.group
            ),
            1,
        );
    }
    // A source-built Icecast keeps its web files elsewhere than Debian's package.
    if !Path::new("/usr/share/icecast2/web").is_dir() {
        if let Some(share) = ["/usr/share/icecast", "/usr/local/share/icecast"]
            .into_iter()
            .find(|dir| Path::new(dir).join("web").is_dir())
        {
            c = replace_exact(&c, "/usr/share/icecast2/web", &format!("{share}/web"), 1);
            c = replace_exact(
                &c,
                "/usr/share/icecast2/admin",
                &format!("{share}/admin"),
                1,
            );
        }
    }
    c
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

mod clients;
pub use clients::*;
