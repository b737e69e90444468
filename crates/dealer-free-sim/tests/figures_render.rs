//! The figure layer end to end: figures written as JSON, SVG and PNG; odd data drawn without
//! panicking; the self-contained index page; and the page rendered by headless Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

#[path = "../../../tests/support/browser.rs"]
mod browser;

use std::path::{Path, PathBuf};

use dealer_free_sim::figures::{
    CellStatus, FIGURE_HEIGHT, FIGURE_SCHEMA, FIGURE_WIDTH, Figure, FigureFiles, Grid, GridCell,
    Panel, Series, write_figure,
};
use dealer_free_sim::report::write_index_html;

fn bars_figure() -> Figure {
    Figure::bars(
        "dkg_overhead",
        "DKG overhead per node",
        "nodes (n, t)",
        "time (ms)",
        vec![
            "(3, 2)".into(),
            "(5, 3)".into(),
            "(7, 4)".into(),
            "(10, 6)".into(),
        ],
    )
    .with_series(Series::bars("Pedersen DKG", vec![1.5, 4.2, 8.9, 19.0]))
    .with_series(Series::bars("FROST DKG", vec![1.2, 3.9, 7.5, 16.2]))
    .with_series(Series::bars("Trusted dealer", vec![0.3, 0.5, 0.8, 1.1]))
    .with_note("median of 20 runs on one thread")
}

fn lines_figure() -> Figure {
    let xs = [1.0, 10.0, 100.0, 1000.0, 10000.0];
    Figure::lines(
        "query_scaling",
        "Secure query time against database size",
        "candidates (count)",
        "query time (µs)",
    )
    .with_log_axes(true, true)
    .with_series(Series::line(
        "secure ranking",
        xs.iter().map(|&x| (x, 50.0 * x + 300.0)).collect(),
    ))
    .with_series(Series::line(
        "plaintext baseline",
        xs.iter().map(|&x| (x, 0.8 * x + 2.0)).collect(),
    ))
}

/// Three panels over one x axis labelled at chosen values.
fn panels_figure() -> Figure {
    let ns: [f64; 6] = [3.0, 5.0, 8.0, 16.0, 32.0, 64.0];
    // Exact in binary, so that the JSON gives back the same numbers.
    let panel = |title: &str, power: i32| Panel {
        title: title.to_owned(),
        y_label: format!("{title} (log scale)"),
        y_log: true,
        series: vec![
            Series::line(
                "DKG",
                ns.iter().map(|&n| (n, n.powi(power) * 0.5)).collect(),
            ),
            Series::line("dealer", ns.iter().map(|&n| (n, n)).collect()),
        ],
    };
    Figure::lines("panels", "Three panels", "nodes n (log scale)", "")
        .with_log_axes(true, true)
        .with_x_ticks(ns.to_vec())
        .with_panel(panel("messages", 2))
        .with_panel(panel("bytes", 3))
        .with_panel(panel("CPU", 1))
}

/// A grid of outcomes.
fn grid_figure() -> Figure {
    let cell = |row, column, status, text: &[&str]| GridCell {
        row,
        column,
        status,
        text: text.iter().map(|t| (*t).to_owned()).collect(),
    };
    Figure::grid(
        "grid",
        "Outcomes",
        "faulty nodes",
        "stage: fault",
        Grid {
            rows: vec!["DKG: crash".into(), "Stage-2: crash".into()],
            columns: vec!["0".into(), "1".into(), "2".into()],
            cells: vec![
                cell(0, 0, CellStatus::Good, &["ok", "136 ms"]),
                cell(0, 1, CellStatus::Bad, &["failed", "no key"]),
                cell(1, 0, CellStatus::Good, &["ok", "599 ms"]),
                cell(1, 1, CellStatus::Partial, &["no search", "110 ms"]),
            ],
            legend: vec![
                (CellStatus::Good, "ok".into()),
                (CellStatus::Partial, "partly".into()),
                (CellStatus::Bad, "failed".into()),
                (CellStatus::Empty, "not injected".into()),
            ],
        },
    )
}

/// Figures with data that must not break the renderer.
fn odd_figures() -> Vec<Figure> {
    let lines = |name: &str, x_log: bool, y_log: bool, series: Vec<Series>| {
        let mut f = Figure::lines(name, format!("odd {name}"), "x (1)", "y (1)")
            .with_log_axes(x_log, y_log);
        f.series = series;
        f
    };
    let bars = |name: &str, y_log: bool, categories: Vec<String>, series: Vec<Series>| {
        let mut f = Figure::bars(name, format!("odd {name}"), "c", "v (1)", categories)
            .with_log_axes(false, y_log);
        f.series = series;
        f
    };
    vec![
        lines("lines_empty", false, false, vec![]),
        lines(
            "lines_empty_series",
            true,
            true,
            vec![Series::line("none", vec![])],
        ),
        lines(
            "lines_single",
            true,
            true,
            vec![Series::line("one", vec![(5.0, 5.0)])],
        ),
        lines(
            "lines_equal",
            false,
            false,
            vec![Series::line(
                "flat",
                vec![(1.0, 3.0), (1.0, 3.0), (1.0, 3.0)],
            )],
        ),
        lines(
            "lines_bad_values",
            true,
            true,
            vec![Series::line(
                "nan, zero, negative, huge",
                vec![
                    (f64::NAN, 1.0),
                    (1.0, f64::INFINITY),
                    (0.0, 1.0),
                    (-3.0, 2.0),
                    (2.0, 0.0),
                    (3.0, -1.0),
                    (1e-300, 1e300),
                    (4.0, 4.0),
                ],
            )],
        ),
        lines(
            "lines_all_nonpositive",
            false,
            true,
            vec![Series::line("zeros", vec![(1.0, 0.0), (2.0, -1.0)])],
        ),
        lines(
            "lines_many_series",
            false,
            false,
            (0..40)
                .map(|i| {
                    Series::line(
                        format!("a rather long series name number {i}"),
                        vec![(0.0, f64::from(i)), (1.0, f64::from(i) * 2.0)],
                    )
                })
                .collect(),
        ),
        bars("bars_empty", false, vec![], vec![]),
        bars(
            "bars_no_categories",
            false,
            vec![],
            vec![Series::bars("s", vec![1.0, 2.0])],
        ),
        bars(
            "bars_all_zero",
            false,
            vec!["a".into(), "b".into()],
            vec![Series::bars("zero", vec![0.0, 0.0])],
        ),
        bars(
            "bars_log_bad",
            true,
            vec!["a".into(), "b".into(), "c".into()],
            vec![
                Series::bars("mixed", vec![0.0, -2.0, f64::NAN]),
                Series::bars("short", vec![3.0]),
                Series::bars("long", vec![1.0, 2.0, 3.0, 4.0, 5.0]),
            ],
        ),
        bars(
            "bars_negative",
            false,
            vec![
                "a very long category label that cannot fit".into(),
                "b".into(),
            ],
            vec![Series::bars("neg", vec![-5.0, 3.0])],
        ),
        bars(
            "bars_huge",
            false,
            vec!["max".into(), "min".into(), "tiny".into()],
            vec![Series::bars(
                "extremes",
                vec![f64::MAX, f64::MIN, f64::MIN_POSITIVE],
            )],
        ),
        lines(
            "lines_wide_log",
            true,
            true,
            vec![Series::line("wide", vec![(1e-140, 1e-140), (1e140, 1e140)])],
        ),
        {
            let mut f = lines("lines_bad_ticks", true, false, vec![]);
            f.x_ticks = vec![f64::NAN, -1.0, 0.0, 2.0];
            f.series = vec![Series::line("s", vec![(2.0, 1.0), (4.0, 2.0)])];
            f
        },
        {
            let mut f = grid_figure();
            f.name = "grid_outside".into();
            if let Some(g) = &mut f.grid {
                g.cells[0].row = 7;
                g.cells[1].column = 9;
            }
            f
        },
        {
            let mut f = grid_figure();
            f.name = "grid_empty".into();
            f.grid = None;
            f
        },
        {
            let mut f = grid_figure();
            f.name = "grid_huge".into();
            if let Some(g) = &mut f.grid {
                g.columns = (0..300).map(|i| i.to_string()).collect();
                g.rows = (0..200)
                    .map(|i| format!("row {i} with a long label"))
                    .collect();
                g.cells = (0..300)
                    .map(|i| GridCell {
                        row: i % 200,
                        column: i,
                        status: CellStatus::Good,
                        text: vec!["a long text in a tiny cell".into()],
                    })
                    .collect();
            }
            f
        },
    ]
}

/// A fresh temporary directory, or `$DEALER_FREE_SIS_KEEP_FIGURES/<sub>` when that variable is
/// set (to look at the figures afterwards).
fn out_dir(sub: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    if let Some(keep) = std::env::var_os("DEALER_FREE_SIS_KEEP_FIGURES") {
        let dir = PathBuf::from(keep).join(sub);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (None, dir)
    } else {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        (Some(tmp), dir)
    }
}

fn check_files(fig: &Figure, files: &FigureFiles) {
    for p in [&files.json, &files.svg, &files.png] {
        assert!(p.is_file(), "{} missing", p.display());
    }

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
    assert_eq!(json["schema"], FIGURE_SCHEMA);
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["figure"]["name"], fig.name.as_str());
    assert_eq!(json["figure"]["title"], fig.title.as_str());
    assert!(json.get("data").is_some());

    let svg = std::fs::read_to_string(&files.svg).unwrap();
    for text in [&fig.title, &fig.x_label, &fig.y_label] {
        assert!(
            svg.contains(&xml_escape(text)),
            "{}: SVG lacks {text:?}",
            fig.name
        );
    }
    let panel_series = fig.panels.iter().flat_map(|p| p.series.iter().take(1));
    for title in fig.panels.iter().map(|p| &p.title) {
        assert!(
            svg.contains(&xml_escape(title)),
            "{}: no panel {title:?}",
            fig.name
        );
    }
    // Rows are labelled where they have room (not in a grid of hundreds).
    let labelled = fig.grid.iter().filter(|g| g.rows.len() <= 20);
    for row in labelled.flat_map(|g| g.rows.iter().take(5)) {
        assert!(
            svg.contains(&xml_escape(row)),
            "{}: no row {row:?}",
            fig.name
        );
    }
    for s in fig.series.iter().take(5).chain(panel_series) {
        assert!(
            svg.contains(&xml_escape(&s.name)),
            "{}: SVG lacks the legend entry {:?}",
            fig.name,
            s.name
        );
    }

    let png = std::fs::read(&files.png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}: not a PNG", fig.name);
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (FIGURE_WIDTH, FIGURE_HEIGHT));
    // Not a blank image: some pixels are neither white nor one flat colour.
    let distinct: std::collections::HashSet<&[u8]> =
        buf[..info.buffer_size()].chunks(3).take(1 << 20).collect();
    assert!(distinct.len() > 10, "{}: PNG looks blank", fig.name);
}

/// The escaping the SVG backend applies to text.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn no_temporary_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "temporary file left behind: {name}");
    }
}

#[test]
fn figures_are_written_as_json_svg_and_png() {
    let (_tmp, dir) = out_dir("figures");
    let mut written = Vec::new();
    for fig in [
        bars_figure(),
        lines_figure(),
        panels_figure(),
        grid_figure(),
    ] {
        let data = serde_json::json!({"runs": 20, "raw_ms": [1.0, 2.0]});
        let files = write_figure(dir.as_path(), &fig, &data).unwrap();
        check_files(&fig, &files);
        assert!(files.render_notes.is_empty(), "{:?}", files.render_notes);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
        assert_eq!(json["data"], data);
        let back: Figure = serde_json::from_value(json["figure"].clone()).unwrap();
        assert_eq!(back, fig);
        written.push((fig, files));
    }
    // Writing again replaces the files in place.
    let again = write_figure(dir.as_path(), &written[0].0, &serde_json::Value::Null).unwrap();
    assert_eq!(again.json, written[0].1.json);
    no_temporary_files(dir.as_path());

    let index = write_index_html(
        dir.as_path(),
        &written,
        "# Run\n\n| figure | median |\n|---|---|\n| DKG | 4.2 ms |\n",
        "dealer-free-sis figures",
    )
    .unwrap();
    check_index(&index, &written);
    no_temporary_files(dir.as_path());
    browser_check(&index, written.len());
}

#[test]
fn odd_data_renders_with_notes() {
    let (_tmp, dir) = out_dir("odd");
    let mut written = Vec::new();
    for fig in odd_figures() {
        let files = write_figure(dir.as_path(), &fig, &serde_json::Value::Null)
            .unwrap_or_else(|e| panic!("{}: {e}", fig.name));
        check_files(&fig, &files);
        written.push((fig, files));
    }
    let notes = |name: &str| {
        written
            .iter()
            .find(|(f, _)| f.name == name)
            .map(|(_, files)| files.render_notes.join("\n"))
            .unwrap()
    };
    assert!(notes("lines_empty").contains("no data"));
    let bad = notes("lines_bad_values");
    assert!(bad.contains("2 point(s) with a non-finite"), "{bad}");
    assert!(bad.contains("2 point(s) with x ≤ 0"), "{bad}");
    assert!(bad.contains("2 point(s) with y ≤ 0"), "{bad}");
    assert!(bad.contains("1 point(s) with a coordinate beyond"), "{bad}");
    assert!(notes("bars_log_bad").contains("≤ 0 left out"));
    assert!(notes("lines_bad_ticks").contains("3 x tick(s) that cannot be drawn"));
    assert!(notes("grid_outside").contains("2 cell(s) outside the grid"));
    assert!(notes("grid_empty").contains("no data"));
    assert!(notes("grid_huge").is_empty());
    assert!(notes("lines_single").is_empty());
    // NaN in the figure becomes null in the JSON.
    let json = std::fs::read_to_string(dir.as_path().join("lines_bad_values.json")).unwrap();
    assert!(json.contains("null"));

    let index = write_index_html(dir.as_path(), &written, "", "odd").unwrap();
    check_index(&index, &written);
}

#[test]
fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut fig = bars_figure();
    fig.name = "../escape".into();
    assert!(write_figure(dir.path(), &fig, &serde_json::Value::Null).is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn check_index(index: &Path, figures: &[(Figure, FigureFiles)]) {
    let html = std::fs::read_to_string(index).unwrap();
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
    ));
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let value = html[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http://") && !value.starts_with("https://"),
                "external URL in {}",
                &html[i..(i + 80).min(html.len())]
            );
        }
    }
    assert!(!html.contains("<?xml"));
    assert_eq!(html.matches("<svg").count(), figures.len());
    assert!(html.contains(&format!("data-expected=\"{}\"", figures.len())));
    for (fig, files) in figures {
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        let start = svg.find("<svg").unwrap();
        assert!(
            html.contains(svg[start..].trim_end()),
            "{}: SVG not inlined",
            fig.name
        );
        assert!(html.contains(&format!("href=\"{}.json\"", fig.name)));
        assert!(html.contains(&format!("href=\"{}.png\"", fig.name)));
        assert!(html.contains(&format!("href=\"{}.svg\"", fig.name)));
    }
}

/// Renders the page in headless Chromium and checks that every inline SVG was laid out
/// and that it requested nothing outside itself.
fn browser_check(index: &Path, expected: usize) {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let page = browser::render(&chromium, index);
    assert_eq!(page.expected, expected.to_string(), "{page:?}");
    assert_eq!(
        page.rendered, page.expected,
        "not every figure was rendered: {page:?}"
    );
    assert_eq!(page.blocked, "", "the page tried to load: {page:?}");
    assert_eq!(page.requests, "", "the page loaded: {page:?}");
}
