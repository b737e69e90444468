//! The experiment's own `index.html` in headless Chromium: every figure is laid out (the
//! panels of dkg_overhead and the grid of fault_tolerance among them), the secure-ranking
//! comparison's section is on the page, and the page requests nothing outside itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

#[path = "support/browser.rs"]
mod browser;
#[path = "support/cli.rs"]
mod cli;
#[path = "support/process.rs"]
mod process;

use std::path::Path;
use std::time::Duration;

use cli::stderr;

#[test]
fn the_experiment_page_renders_every_figure_and_requests_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figures");
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let query = images.join("sk_moon.png").display().to_string();
    let args = [
        "experiment",
        "--images",
        &images.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--mpc-query-image",
        &query,
        // With a query image only the named figure sets run: all of them.
        "--figures",
        "stage_communication,dkg_overhead,stage_latency,batching,fault_tolerance,scaling",
        "--dkg-nodes",
        "3,5",
        "--batch-sizes",
        "1,4",
        "--scale-nodes",
        "3,5",
        "--scale-images",
        "50,100",
    ];
    let exe = env!("CARGO_BIN_EXE_dealer-free-sis");
    let o = process::run_bounded(exe, &args, Duration::from_secs(900)).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let index = out.join("index.html");
    let html = std::fs::read_to_string(&index).unwrap();
    let figures = html.matches("<section class=\"figure\"").count();
    assert_eq!(figures, 7, "every figure on the page");
    assert!(html.contains("<h3>secure_distance_comparison</h3>"));
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let page = browser::render(&chromium, &index);
    assert_eq!(page.expected, figures.to_string(), "{page:?}");
    assert_eq!(
        page.rendered, page.expected,
        "not every figure was laid out: {page:?}"
    );
    assert_eq!(
        page.images_rendered, page.images,
        "an <img> did not render: {page:?}"
    );
    assert_eq!(page.blocked, "", "the page tried to load: {page:?}");
    assert_eq!(page.requests, "", "the page loaded: {page:?}");

    // The check itself: the same page asking for an outside image and URL is caught.
    let bad = out.join("outside.html");
    std::fs::write(
        &bad,
        html.replace(
            "</body>",
            "<img src=\"http://example.invalid/x.png\">\
             <script>fetch(\"https://example.invalid/y\")</script></body>",
        ),
    )
    .unwrap();
    let caught = browser::render(&chromium, &bad);
    assert!(
        caught.blocked.contains("example.invalid/x.png"),
        "{caught:?}"
    );
    assert!(caught.blocked.contains("example.invalid/y"), "{caught:?}");
    assert_eq!(
        (caught.images, caught.images_rendered),
        (1, 0),
        "{caught:?}"
    );
}
