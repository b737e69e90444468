//! Rendering an experiment page in headless Chromium: whether every figure was laid out and
//! whether the page asked for anything outside itself.
//!
//! The page is copied next to itself with a probe script at the top of its `<head>` (before
//! the page's Content-Security-Policy); the probe records every CSP violation (a blocked
//! request) and every resource the page fetched that is not `data:`/`file:`, and whether each
//! `<img>` has loaded and has a size. Chromium runs with every host name unresolvable, so
//! nothing can leave the machine while it checks. The page's own `data-expected` and
//! `data-rendered` (the inline SVGs that were laid out) are read from the dumped `<body>`.
//!
//! With no `chromium` on PATH the check fails unless `DEALER_FREE_SIS_SKIP_BROWSER=1`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The probe inserted at the top of the page's `<head>`.
const PROBE: &str = r#"<script>
(function () {
  var root = document.documentElement;
  var blocked = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    blocked.push(e.blockedURI || e.violatedDirective);
    root.dataset.blocked = blocked.join(" ");
  });
  window.addEventListener("load", function () {
    var out = performance.getEntriesByType("resource")
      .map(function (r) { return r.name; })
      .filter(function (u) { return !/^(data|file|blob|about):/.test(u); });
    root.dataset.requests = out.join(" ");
    var imgs = document.querySelectorAll("img");
    var ok = 0;
    imgs.forEach(function (i) {
      if (i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0) { ok += 1; }
    });
    root.dataset.imgTotal = String(imgs.length);
    root.dataset.imgRendered = String(ok);
    root.dataset.checked = "1";
  });
})();
</script>
"#;

/// What the page did in the browser.
#[derive(Debug)]
pub(crate) struct PageReport {
    /// The page's `data-expected`: figures on the page.
    pub(crate) expected: String,
    /// The page's `data-rendered`: inline SVGs laid out with a non-empty box.
    pub(crate) rendered: String,
    /// `<img>` elements on the page.
    pub(crate) images: usize,
    /// `<img>` elements loaded and laid out.
    pub(crate) images_rendered: usize,
    /// Requests the Content-Security-Policy blocked (space-separated URLs).
    pub(crate) blocked: String,
    /// Resources fetched from anywhere but `data:`/`file:` (space-separated URLs).
    pub(crate) requests: String,
}

/// Finds `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Chromium binary; `None` (with a note) when there is none and
/// `DEALER_FREE_SIS_SKIP_BROWSER=1`; panics when there is none otherwise.
pub(crate) fn chromium() -> Option<PathBuf> {
    if let Some(c) = on_path("chromium").or_else(|| on_path("chromium-browser")) {
        return Some(c);
    }
    if std::env::var("DEALER_FREE_SIS_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!(
            "note: no chromium on PATH; browser check skipped (DEALER_FREE_SIS_SKIP_BROWSER=1)"
        );
        return None;
    }
    panic!(
        "no `chromium` (or `chromium-browser`) on PATH: run scripts/setup.sh to install it, \
         or set DEALER_FREE_SIS_SKIP_BROWSER=1 to skip the browser check"
    );
}

/// Renders `page` (with the probe) in headless Chromium and reports what it did.
pub(crate) fn render(chromium: &Path, page: &Path) -> PageReport {
    let html = std::fs::read_to_string(page).unwrap();
    let head = html.find("<head>").expect("the page has a <head>") + "<head>".len();
    let probed = page.with_file_name(".browser-check.html");
    std::fs::write(
        &probed,
        format!("{}{PROBE}{}", &html[..head], &html[head..]),
    )
    .unwrap();
    let probed = probed.canonicalize().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", probed.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    let _ = std::fs::remove_file(&probed);
    assert!(status.success(), "chromium failed ({status}): {err}");
    let html_tag = tag(&dom, "<html", &err);
    let body_tag = tag(&dom, "<body", &err);
    assert_eq!(
        attr(&html_tag, "data-checked").as_deref(),
        Some("1"),
        "the probe did not run: {html_tag}"
    );
    let count = |name: &str| {
        attr(&html_tag, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    PageReport {
        expected: attr(&body_tag, "data-expected").unwrap_or_default(),
        rendered: attr(&body_tag, "data-rendered").unwrap_or_default(),
        images: count("data-img-total"),
        images_rendered: count("data-img-rendered"),
        blocked: attr(&html_tag, "data-blocked").unwrap_or_default(),
        requests: attr(&html_tag, "data-requests").unwrap_or_default(),
    }
}

/// The opening tag `<name ...>` in the dumped DOM.
fn tag(dom: &str, open: &str, err: &str) -> String {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open}> in the dumped DOM; stderr: {err}"));
    let end = dom[start..].find('>').unwrap();
    dom[start..start + end].to_owned()
}

/// An attribute's value in an opening tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)?;
    let rest = &tag[i + key.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}
