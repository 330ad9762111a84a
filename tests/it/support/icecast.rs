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
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// Whether Icecast tests can run. Without `icecast2`: a panic when `CI` is set, else a
/// loud skip message and `false` (the caller returns early).
pub fn require_icecast() -> bool {
    if icecast_available() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "icecast2 is not installed ({DEBIAN_BINARY} missing, none on PATH) and CI is set: \
             install it (Debian/Ubuntu: apt-get install icecast2) so the Icecast tests run"
        );
    }
    eprintln!();
    eprintln!("==================================================================");
    eprintln!("SKIPPED: icecast2 not installed ({DEBIAN_BINARY} missing, none on PATH).");
    eprintln!("         Real-Icecast tests did NOT run. Install: apt-get install icecast2");
    eprintln!("==================================================================");
    eprintln!();
    false
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
        let binary =
            icecast_binary().expect("icecast2 not installed: call require_icecast() first");
        let template_path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("icecast-examples/icecast.xml");
        let template = fs::read_to_string(&template_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", template_path.display()));

        let mut last_failure = String::new();
        // A port picked free can be taken before Icecast binds it (tests run in parallel).
        for _attempt in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("jars-icecast-")
                .tempdir()
                .expect("create temp dir");
            let port = free_port();
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
            let config = test_config(
                &template,
                port,
                jars_auth_url,
                callback_user,
                callback_password,
                &log_dir,
                run_as.as_ref(),
            );
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

fn free_port() -> u16 {
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

fn basic_header(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

/// One HTTP response head: the status code, the status line, the header lines.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response head from `stream`; bytes read past it stay in `buf`.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<ResponseHead> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default().to_string();
            let status = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        ErrorKind::InvalidData,
                        format!("bad status line {status_line:?}"),
                    )
                })?;
            let headers = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            return Ok(ResponseHead {
                status,
                status_line,
                headers,
            });
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before a full response head (got {:?})",
                    String::from_utf8_lossy(buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to Icecast on 127.0.0.1:{port}: {e}"))
}

/// One MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, joint stereo, no padding:
/// 144 * 128000 / 44100 = 417 bytes, 26 ms of (silent) audio.
pub fn mp3_frame() -> Vec<u8> {
    let mut frame = vec![0u8; 417];
    frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
    frame
}

/// A source client. While accepted, a background task writes an MP3 frame every 20 ms;
/// dropping the handle or [`SourceHandle::stop`] closes the connection, and Icecast
/// then ends the mount (`mount_remove`).
pub struct SourceHandle {
    head: ResponseHead,
    /// `100 Continue` came before the final status.
    pub got_continue: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SourceHandle {
    /// The final status: 200 accepted, 401 denied, 403 mount in use.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn status_line(&self) -> &str {
        &self.head.status_line
    }

    /// Still streaming (Icecast has not closed the connection).
    pub fn is_streaming(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Closes the source connection and waits until it is closed.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Connects a source to `mount` with an HTTP `PUT`, Basic `user`/`password`,
/// `Content-Type: audio/mpeg` and `Expect: 100-continue`, and waits for Icecast's final
/// answer (which comes after `stream_auth`). If accepted (200), audio keeps flowing.
pub async fn start_source(port: u16, mount: &str, user: &str, password: &str) -> SourceHandle {
    let mut stream = connect(port).await;
    let request = format!(
        "PUT {mount} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{}User-Agent: jars-test-source\r\n\
         Content-Type: audio/mpeg\r\nIce-Public: 0\r\nIce-Name: jars test\r\n\
         Expect: 100-continue\r\n\r\n",
        basic_header(user, password)
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send source request");
    let mut buf = Vec::new();
    let mut got_continue = false;
    let head = loop {
        let head = tokio::time::timeout(RESPONSE_TIMEOUT, read_head(&mut stream, &mut buf))
            .await
            .unwrap_or_else(|_| panic!("no answer to source PUT {mount} in {RESPONSE_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("source PUT {mount}: {e}"));
        if head.status == 100 {
            got_continue = true;
            continue;
        }
        break head;
    };
    if head.status != 200 {
        return SourceHandle {
            head,
            got_continue,
            stop: None,
            task: None,
        };
    }
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let frame = mp3_frame();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                _ = tick.tick() => {
                    if stream.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = stream.shutdown().await;
    });
    SourceHandle {
        head,
        got_continue,
        stop: Some(stop_tx),
        task: Some(task),
    }
}

/// What a listener got.
#[derive(Debug, Clone)]
pub struct ListenResult {
    pub status: u16,
    /// Body bytes read (audio, or the error text).
    pub bytes: usize,
    pub head: ResponseHead,
}

fn listener_request(
    port: u16,
    path_and_query: &str,
    basic: Option<(&str, &str)>,
    extra_headers: &[(&str, &str)],
) -> String {
    let mut request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: jars-test-listener\r\n"
    );
    if let Some((user, password)) = basic {
        request.push_str(&basic_header(user, password));
    }
    for (name, value) in extra_headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("Connection: close\r\n\r\n");
    request
}

/// Plays `path_and_query` with a raw `GET` until `read_bytes` body bytes arrived, the
/// server closed, or `timeout` passed; then disconnects.
pub async fn listen(
    port: u16,
    path_and_query: &str,
    basic: Option<(&str, &str)>,
    read_bytes: usize,
    timeout: Duration,
) -> ListenResult {
    listen_with_headers(port, path_and_query, basic, &[], read_bytes, timeout).await
}

/// [`listen`] with extra request headers (e.g. `Referer`).
pub async fn listen_with_headers(
    port: u16,
    path_and_query: &str,
    basic: Option<(&str, &str)>,
    extra_headers: &[(&str, &str)],
    read_bytes: usize,
    timeout: Duration,
) -> ListenResult {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = connect(port).await;
    stream
        .write_all(listener_request(port, path_and_query, basic, extra_headers).as_bytes())
        .await
        .expect("send listener request");
    let mut buf = Vec::new();
    let head = tokio::time::timeout_at(deadline, read_head(&mut stream, &mut buf))
        .await
        .unwrap_or_else(|_| panic!("no response to GET {path_and_query} within {timeout:?}"))
        .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
    let mut bytes = buf.len();
    let mut chunk = vec![0u8; 16384];
    while bytes < read_bytes {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => bytes += n,
        }
    }
    ListenResult {
        status: head.status,
        bytes,
        head,
    }
}

/// A listener that stays connected, reading in the background, until the server closes
/// the connection or [`ListenerHandle::close`].
pub struct ListenerHandle {
    pub head: ResponseHead,
    bytes: Arc<AtomicUsize>,
    closed_after: Arc<Mutex<Option<Duration>>>,
    task: Option<JoinHandle<()>>,
}

impl ListenerHandle {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// How long after the request was sent the server closed the connection, if it has.
    /// (Measured from the request, which precedes Icecast's `listener_add`, so that a
    /// time limit of N s always shows as more than N - 1 s: Icecast counts it in whole
    /// seconds from the moment jars' answer arrived.)
    pub fn closed_after(&self) -> Option<Duration> {
        *self.closed_after.lock().unwrap()
    }

    /// Waits up to `timeout` for the server to close the connection.
    pub async fn wait_closed(&self, timeout: Duration) -> Option<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(after) = self.closed_after() {
                return Some(after);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Disconnects (Icecast then sends `listener_remove`).
    pub fn close(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Connects a listener and waits for the response head (which comes after
/// `listener_add`); then keeps reading in the background.
pub async fn open_listener(
    port: u16,
    path_and_query: &str,
    basic: Option<(&str, &str)>,
) -> ListenerHandle {
    open_listener_with_headers(port, path_and_query, basic, &[]).await
}

/// [`open_listener`] with extra request headers.
pub async fn open_listener_with_headers(
    port: u16,
    path_and_query: &str,
    basic: Option<(&str, &str)>,
    extra_headers: &[(&str, &str)],
) -> ListenerHandle {
    let mut stream = connect(port).await;
    let requested = Instant::now();
    stream
        .write_all(listener_request(port, path_and_query, basic, extra_headers).as_bytes())
        .await
        .expect("send listener request");
    let mut buf = Vec::new();
    let head = tokio::time::timeout(RESPONSE_TIMEOUT, read_head(&mut stream, &mut buf))
        .await
        .unwrap_or_else(|_| panic!("no response to GET {path_and_query} in {RESPONSE_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("GET {path_and_query}: {e}"));
    let bytes = Arc::new(AtomicUsize::new(buf.len()));
    let closed_after = Arc::new(Mutex::new(None));
    let (count, closed) = (bytes.clone(), closed_after.clone());
    let task = tokio::spawn(async move {
        let mut chunk = vec![0u8; 16384];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    count.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
        *closed.lock().unwrap() = Some(requested.elapsed());
    });
    ListenerHandle {
        head,
        bytes,
        closed_after,
        task: Some(task),
    }
}

/// A plain `GET` (optionally with Basic credentials) returning the status and the body,
/// for web pages such as `/status.xsl` or `/admin/stats`.
pub async fn get_page(port: u16, path: &str, basic: Option<(&str, &str)>) -> (u16, String) {
    let mut stream = connect(port).await;
    stream
        .write_all(listener_request(port, path, basic, &[]).as_bytes())
        .await
        .expect("send request");
    let mut buf = Vec::new();
    let head = tokio::time::timeout(RESPONSE_TIMEOUT, read_head(&mut stream, &mut buf))
        .await
        .unwrap_or_else(|_| panic!("no response to GET {path}"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    (head.status, String::from_utf8_lossy(&buf).into_owned())
}
