//! A real headless Chromium for the page tests, driven through WebDriver: [`Browser::start`]
//! runs Debian's `chromedriver` on a free loopback port and opens a `--headless=new` Chromium
//! session on it with `fantoccini` (plain HTTP to chromedriver: no TLS stack involved). One
//! browser at a time ([`Browser`] holds the only slot): two cores cannot run several Chromiums
//! next to the other tests; a test wanting a second visitor opens a second window of it
//! ([`Browser::open_window`]), whose storage starts empty. Chromium offers its fake microphone
//! (a beep) without asking, for the studio tests; [`Browser::screenshot`] saves the page at
//! desktop and phone widths into `JARS_SCREENSHOTS` when that is set (`scripts/screenshots`).

use std::net::{SocketAddr, TcpListener as StdTcpListener, TcpStream as StdTcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;

/// How long a page condition may take before the test fails (refreshes run every 5 s).
pub const PAGE_WAIT: Duration = Duration::from_secs(20);
/// The window the browser starts with: a phone's.
pub const PHONE: (u32, u32) = (390, 844);
/// A desktop's window, for screenshots.
pub const DESKTOP: (u32, u32) = (1280, 800);
/// Where [`Browser::screenshot`] saves, when set.
pub const SCREENSHOTS_ENV: &str = "JARS_SCREENSHOTS";

static BROWSER_SLOT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

fn binary(name: &str) -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin").join(name);
    if debian.is_file() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Makes sure `chromium` and `chromedriver` are here. A test that calls this is compiled
/// `#[ignore]`d when they were not as the tests were built (`build.rs`), so it runs only with
/// them (or under `CI`, where they must be there): a missing one is a failure that says what
/// to do.
pub fn require_chromium() {
    let missing: Vec<&str> = ["chromium", "chromedriver"]
        .into_iter()
        .filter(|b| binary(b).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} not installed. Install them (Debian: apt-get install chromium chromium-driver); \
         without CI set, `touch build.rs` marks the page's browser tests ignored at the next build",
        missing.join(" and ")
    );
}

/// A chromedriver process and a headless Chromium session on it; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    /// chromedriver's log and Chromium's profile.
    _dir: TempDir,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium at phone width (390 × 844).
    pub async fn start() -> Browser {
        let slot = BROWSER_SLOT.acquire().await.expect("browser slot");
        let dir = tempfile::Builder::new()
            .prefix("jars-chromium-")
            .tempdir()
            .unwrap();
        let port = StdTcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).unwrap();
        let driver = Command::new(binary("chromedriver").expect("require_chromium first"))
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run chromedriver");
        let mut browser_dir = dir.path().to_path_buf();
        browser_dir.push("profile");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while StdTcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary("chromium").expect("require_chromium first"),
                "args": [
                    "--headless=new",
                    // CI runs as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={},{}", PHONE.0, PHONE.1),
                    // A microphone (a beep) for the studio, allowed without a prompt.
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    format!("--user-data-dir={}", browser_dir.display()),
                ],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(dir.path().join("chromedriver.log"))
                    .unwrap_or_default();
                panic!("no Chromium session: {e}\nchromedriver log:\n{log}")
            });
        Browser {
            client,
            driver,
            port,
            _dir: dir,
            _slot: slot,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    /// The element `css` matches, waiting for it to exist.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PAGE_WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the field `css` after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The current value of the input `css`.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Runs `script` in the page and returns its result.
    pub async fn run(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Waits until the text of `css` satisfies `pred`; returns it. Fails naming `what`.
    pub async fn wait_text(&self, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if pred(&text) {
                return text;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "{what}: {css} still reads {text:?} after {PAGE_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element `css` is displayed (or, with `shown = false`, hidden).
    pub async fn wait_shown(&self, css: &str, shown: bool) {
        let started = Instant::now();
        loop {
            let now = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.is_displayed().await.unwrap_or(false),
                Err(_) => false,
            };
            if now == shown {
                return;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "{css} is still {} after {PAGE_WAIT:?}",
                if shown { "hidden" } else { "shown" }
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `keys` (text, or [`fantoccini::key::Key`]s as chars) into whatever has the focus,
    /// as a person at the keyboard does.
    pub async fn press(&self, keys: &str) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut actions = KeyActions::new("keyboard".into());
        for value in keys.chars() {
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client
            .perform_actions(actions)
            .await
            .unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
    }

    /// Whether the page fits its window's width (nothing to scroll sideways).
    pub async fn fits_width(&self) -> (bool, serde_json::Value) {
        let sizes = self
            .run(
                "return [document.documentElement.scrollWidth, \
                 document.documentElement.clientWidth]",
            )
            .await;
        (sizes[0].as_u64() <= sizes[1].as_u64(), sizes)
    }

    /// Logs in through the page's form and waits for the member section.
    pub async fn log_in(&self, user: &str, password: &str) {
        self.fill("#login-user", user).await;
        self.fill("#login-password", password).await;
        self.click("#login-form button[type=submit]").await;
        self.wait_shown("#member", true).await;
    }

    /// Opens a second window (a visitor of its own: its `sessionStorage` is empty) on `url`
    /// and switches to it; returns the window it left, for [`Browser::switch_to`].
    pub async fn open_window(&self, url: &str) -> fantoccini::wd::WindowHandle {
        let left = self.client.window().await.expect("current window");
        let opened = self.client.new_window(false).await.expect("new window");
        self.switch_to(opened.handle).await;
        self.goto(url).await;
        left
    }

    /// The current window's handle.
    pub async fn window(&self) -> fantoccini::wd::WindowHandle {
        self.client.window().await.expect("current window")
    }

    /// Makes `window` the one commands go to.
    pub async fn switch_to(&self, window: fantoccini::wd::WindowHandle) {
        self.client
            .switch_to_window(window)
            .await
            .expect("switch window");
    }

    /// Waits until `script` (a JavaScript expression) is true in the page; fails naming `what`.
    pub async fn wait_until(&self, script: &str, what: &str) {
        let started = Instant::now();
        loop {
            let now = self
                .client
                .execute(&format!("return Boolean({script})"), vec![])
                .await;
            if matches!(now, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            assert!(
                started.elapsed() < PAGE_WAIT,
                "{what}: `{script}` still not true after {PAGE_WAIT:?} ({now:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// With `JARS_SCREENSHOTS` set to a folder: saves the whole page at desktop and at phone
    /// width as `<name>-desktop.png` and `<name>-phone.png` there, then goes back to a phone's
    /// window. Without it, nothing.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("the screenshots folder");
        for (label, (width, height)) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.client.set_window_size(width, height).await.unwrap();
            // As tall as the page, so the picture shows all of it (a window's frame takes
            // some of its height: grown until the view holds the page).
            let mut tall = height;
            for _ in 0..3 {
                let sizes = self
                    .run("return [document.documentElement.scrollHeight, window.innerHeight]")
                    .await;
                let (page, view) = (sizes[0].as_u64(), sizes[1].as_u64());
                let (Some(page), Some(view)) = (page, view) else {
                    break;
                };
                if view >= page || tall >= 6000 {
                    break;
                }
                tall = u32::try_from(u64::from(tall) + page - view)
                    .unwrap_or(6000)
                    .min(6000);
                self.client.set_window_size(width, tall).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
        self.client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    }

    /// Ends the session (Chromium quits), then chromedriver (on drop).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver's /shutdown quits its Chromium first; killed outright, it would leave
        // the browser running (e.g. when a test fails before `close`).
        shut_down(self.port);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Asks the chromedriver on `port` to quit its sessions and exit, waiting up to 5 s.
fn shut_down(port: u16) {
    use std::io::{Read, Write};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = StdTcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}
