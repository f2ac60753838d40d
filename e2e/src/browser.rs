//! A real browser for the client's tests: Debian's headless Chromium driven over WebDriver by its
//! own ChromeDriver. Each `Browser` is a separate profile (its own cookies), so two of them are two
//! people. Screenshots land in `target/screenshots/` as test artifacts.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::{free_ports, random_hex, target_dir};

pub const WAIT: Duration = Duration::from_secs(30);

/// One ChromeDriver, shared by the browsers of a test; killed on drop, with every browser it
/// started: a test that fails midway never closes its browsers, and killing ChromeDriver leaves
/// them running, to slow every test after it.
pub struct Driver {
    child: Child,
    port: u16,
    profiles: std::sync::Mutex<Vec<PathBuf>>,
}

impl Driver {
    pub async fn start() -> Driver {
        let [port] = free_ports::<1>();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; `make setup` installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            child,
            port,
            profiles: Default::default(),
        }
    }

    /// A new browser window with its own profile, `width` x `height` CSS pixels.
    pub async fn open(&self, base_url: &str, width: u32, height: u32) -> Browser {
        let profile = std::env::temp_dir().join(format!("aops-chromium-{}", random_hex(6)));
        self.profiles.lock().unwrap().push(profile.clone());
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            // This machine has no outside network: without these Chromium keeps dialling out.
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session");
        Browser {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        let profiles = self.profiles.lock().unwrap_or_else(|e| e.into_inner());
        let flags: Vec<String> = profiles
            .iter()
            .map(|p| format!("--user-data-dir={}", p.display()))
            .collect();
        for proc in crate::procs::all() {
            if proc.argv.iter().any(|a| flags.contains(a)) {
                proc.kill();
            }
        }
        for profile in profiles.iter() {
            std::fs::remove_dir_all(profile).ok();
        }
    }
}

pub struct Browser {
    pub client: Client,
    base: String,
    profile: PathBuf,
}

impl Browser {
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element `{css}` within {WAIT:?}: {e}"))
    }

    /// Whether `css` is on the page and shown (not `display: none`, not inside a hidden parent).
    pub async fn shown(&self, css: &str) -> bool {
        self.find(css)
            .await
            .is_displayed()
            .await
            .expect("is displayed")
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.count(css).await > 0
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.expect("type");
    }

    /// The rendered text of the first match, read in one step in the page: the live views redraw
    /// a turn on every delta, so an element handle can go stale between finding and reading.
    async fn inner_text(&self, css: &str) -> Option<String> {
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                vec![json!(css)],
            )
            .await
            .expect("script")
            .as_str()
            .map(str::to_owned)
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await;
        self.inner_text(css)
            .await
            .unwrap_or_else(|| panic!("`{css}` went away"))
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .execute(
                "return document.querySelectorAll(arguments[0]).length;",
                vec![json!(css)],
            )
            .await
            .expect("script")
            .as_u64()
            .unwrap_or(0) as usize
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Waits until the text of `css` satisfies `ok`, returning it.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + crate::TURN_TIMEOUT;
        loop {
            if let Some(t) = self.inner_text(css).await {
                if ok(&t) {
                    return t;
                }
                assert!(
                    Instant::now() < deadline,
                    "`{css}` never showed {what}; it shows:\n{t}"
                );
            }
            assert!(Instant::now() < deadline, "`{css}` never appeared");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in with the development sign-in, as a person would.
    pub async fn sign_in(&self, login: &str) {
        self.goto("/").await;
        self.type_into("#dev-login", login).await;
        self.click(".dev-login button[type=submit]").await;
        self.wait_text("[data-test=me]", login, |t| t == login)
            .await;
    }

    /// Saves a screenshot as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    pub async fn close(self) {
        self.client.close().await.ok();
        std::fs::remove_dir_all(&self.profile).ok();
    }
}
