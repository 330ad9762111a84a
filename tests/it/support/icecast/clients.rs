//! Raw HTTP clients of Icecast: a source `PUT` streaming MPEG frames, listeners' `GET`s, and
//! plain page requests, exactly as Icecast 2.4.4 expects them.

use super::*;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// Connects to 127.0.0.1:`port` from the loopback address `from` (127.0.0.2, …): a listener
/// Icecast tells apart from its edge servers' pulls, which come from 127.0.0.1.
async fn connect_from(from: std::net::Ipv4Addr, port: u16) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind((from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .unwrap_or_else(|e| panic!("connect to Icecast on 127.0.0.1:{port} from {from}: {e}"))
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
    listening(
        connect(port).await,
        port,
        path_and_query,
        basic,
        extra_headers,
    )
    .await
}

/// [`open_listener`] connecting from the loopback address `from`.
pub async fn open_listener_from(
    from: std::net::Ipv4Addr,
    port: u16,
    path_and_query: &str,
) -> ListenerHandle {
    listening(
        connect_from(from, port).await,
        port,
        path_and_query,
        None,
        &[],
    )
    .await
}

async fn listening(
    mut stream: TcpStream,
    port: u16,
    path_and_query: &str,
    basic: Option<(&str, &str)>,
    extra_headers: &[(&str, &str)],
) -> ListenerHandle {
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
