//! Figures: a plain, serialisable description of a chart ([`Figure`]) and
//! [`write_figure`], which writes it as `<name>.json` (the figure and its data, versioned),
//! `<name>.svg` and `<name>.png`, each atomically (temporary file in the same directory, then a
//! rename), so an interrupted run leaves either the old file or the new one, never half of one.
//!
//! Three kinds of chart cover the experiments: grouped bars ([`FigureKind::Bars`]: categories ×
//! series), x–y lines with markers ([`FigureKind::Lines`], optionally as several
//! [`Panel`]s side by side over one x axis, labelled at chosen values with
//! [`Figure::x_ticks`]) and a grid of coloured cells ([`FigureKind::Grid`]: an outcome per row
//! and column). Either axis may be logarithmic. Odd data never panics: non-finite values are
//! left out, values ≤ 0 are left out on a logarithmic axis, cells outside the grid are left
//! out, and every such omission is reported as a note under the chart and in
//! [`FigureFiles::render_notes`].
//!
//! [`write_index_html`](crate::report::write_index_html) gathers written figures into one
//! self-contained page.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use plotters::style::FontStyle;
use serde::{Deserialize, Serialize};

mod render;

/// The `schema` field of every figure JSON file.
pub const FIGURE_SCHEMA: &str = "dealer-free-sis/figure";
/// The `schema_version` field of every figure JSON file.
pub const FIGURE_SCHEMA_VERSION: u32 = 1;
/// Width of the PNG (and SVG) images in pixels.
pub const FIGURE_WIDTH: u32 = 1000;
/// Height of the PNG (and SVG) images in pixels.
pub const FIGURE_HEIGHT: u32 = 600;

/// What kind of chart a [`Figure`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FigureKind {
    /// Grouped bars: one group per entry of [`Figure::categories`], one bar per series in each
    /// group, heights from [`Series::values`].
    Bars,
    /// x–y lines with markers, one per series, from [`Series::points`] (drawn in order of x);
    /// with [`Figure::panels`], one chart per panel side by side.
    Lines,
    /// A grid of coloured cells, [`Figure::grid`]: rows (labels on the left) × columns
    /// (labels on top), each cell's colour its [`CellStatus`] and its text inside.
    Grid,
}

/// One chart of a Lines figure with [`Figure::panels`]: its own y axis and series, the
/// figure's x axis. Series at the same position in every panel share a colour and a legend
/// entry (the first panel's names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    /// The panel's heading, e.g. `"messages"`.
    pub title: String,
    /// The y axis' label, with its unit.
    pub y_label: String,
    /// Logarithmic y axis.
    #[serde(default)]
    pub y_log: bool,
    /// The lines.
    pub series: Vec<Series>,
}

/// What a grid cell shows by its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Succeeded (green).
    Good,
    /// Partly succeeded (amber).
    Partial,
    /// Failed (red).
    Bad,
    /// Not run (grey); a cell missing from [`Grid::cells`] is drawn the same way.
    Empty,
}

/// One cell of a [`Grid`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridCell {
    /// Row index into [`Grid::rows`].
    pub row: usize,
    /// Column index into [`Grid::columns`].
    pub column: usize,
    /// The cell's colour.
    pub status: CellStatus,
    /// Short lines of text drawn inside the cell (each shortened with "…" if too wide).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<String>,
}

/// The data of a [`FigureKind::Grid`] figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Row labels, top to bottom.
    pub rows: Vec<String>,
    /// Column labels, left to right.
    pub columns: Vec<String>,
    /// The cells that have something to show (others are drawn empty).
    pub cells: Vec<GridCell>,
    /// The legend: what each colour means, in order.
    pub legend: Vec<(CellStatus, String)>,
}

/// One series of a [`Figure`]: a line (Lines) or one bar per category (Bars).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The label shown in the legend.
    pub name: String,
    /// `(x, y)` points, for [`FigureKind::Lines`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<(f64, f64)>,
    /// One value per category, for [`FigureKind::Bars`] (missing trailing values: no bar).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
}

impl Series {
    /// A line through `points`.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            values: Vec::new(),
        }
    }

    /// Bars with `values`, one per category.
    pub fn bars(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            points: Vec::new(),
            values,
        }
    }
}

/// A chart, described by its data only; [`write_figure`] renders it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// File stem of the written files, e.g. `"dkg_overhead"`: letters, digits, `-`, `_`, `.`
    /// only (no path separators, not starting with `.`).
    pub name: String,
    /// The chart's title.
    pub title: String,
    /// Bars or lines.
    pub kind: FigureKind,
    /// The x axis' label, with its unit, e.g. `"nodes n"` or `"image size (KiB)"`.
    pub x_label: String,
    /// The y axis' label, with its unit, e.g. `"time (ms)"`.
    pub y_label: String,
    /// Logarithmic x axis (Lines only; ignored with a note for Bars).
    #[serde(default)]
    pub x_log: bool,
    /// Logarithmic y axis.
    #[serde(default)]
    pub y_log: bool,
    /// The groups of a bar chart, left to right (Bars only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// The series, in legend order.
    pub series: Vec<Series>,
    /// Lines only: charts side by side over the one x axis, each with its own y axis and
    /// series ([`Figure::series`], [`Figure::y_label`] and [`Figure::y_log`] are then unused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panels: Vec<Panel>,
    /// Lines only: the x values to label. When given, the x axis spans them and the data
    /// (padded a little), every one is labelled and no other value is, so a logarithmic axis
    /// starts at the data rather than at a power of ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x_ticks: Vec<f64>,
    /// Grid only: rows, columns and cells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Grid>,
    /// Remarks shown under the chart and in the report, e.g. the parameters of the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Figure {
    /// An empty bar chart over `categories`; add series with [`Figure::with_series`].
    pub fn bars(
        name: impl Into<String>,
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        categories: Vec<String>,
    ) -> Self {
        Self {
            name: name.into(),
            title: title.into(),
            kind: FigureKind::Bars,
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_log: false,
            y_log: false,
            categories,
            series: Vec::new(),
            panels: Vec::new(),
            x_ticks: Vec::new(),
            grid: None,
            notes: Vec::new(),
        }
    }

    /// A grid chart of `grid`: `column_label` names the columns, `row_label` the rows.
    pub fn grid(
        name: impl Into<String>,
        title: impl Into<String>,
        column_label: impl Into<String>,
        row_label: impl Into<String>,
        grid: Grid,
    ) -> Self {
        Self {
            name: name.into(),
            title: title.into(),
            kind: FigureKind::Grid,
            x_label: column_label.into(),
            y_label: row_label.into(),
            x_log: false,
            y_log: false,
            categories: Vec::new(),
            series: Vec::new(),
            panels: Vec::new(),
            x_ticks: Vec::new(),
            grid: Some(grid),
            notes: Vec::new(),
        }
    }

    /// An empty line chart; add series with [`Figure::with_series`].
    pub fn lines(
        name: impl Into<String>,
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            title: title.into(),
            kind: FigureKind::Lines,
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_log: false,
            y_log: false,
            categories: Vec::new(),
            series: Vec::new(),
            panels: Vec::new(),
            x_ticks: Vec::new(),
            grid: None,
            notes: Vec::new(),
        }
    }

    /// This figure with one more series.
    #[must_use]
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// This figure with the given axes logarithmic.
    #[must_use]
    pub fn with_log_axes(mut self, x_log: bool, y_log: bool) -> Self {
        self.x_log = x_log;
        self.y_log = y_log;
        self
    }

    /// This figure with one more note.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// This figure with one more panel (Lines).
    #[must_use]
    pub fn with_panel(mut self, panel: Panel) -> Self {
        self.panels.push(panel);
        self
    }

    /// This figure with its x axis labelled at `ticks` only (Lines).
    #[must_use]
    pub fn with_x_ticks(mut self, ticks: Vec<f64>) -> Self {
        self.x_ticks = ticks;
        self
    }
}

/// The files [`write_figure`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureFiles {
    /// `<name>.json`: the figure and its data.
    pub json: PathBuf,
    /// `<name>.svg`.
    pub svg: PathBuf,
    /// `<name>.png`.
    pub png: PathBuf,
    /// What the rendering had to leave out or adjust (values ≤ 0 on a log axis, non-finite
    /// values, no data, …); also drawn under the chart. Empty for clean data.
    pub render_notes: Vec<String>,
}

/// What went wrong while writing a figure or the report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FigureError {
    /// A file could not be written or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The chart could not be drawn or encoded.
    #[error("rendering failed: {0}")]
    Render(String),
    /// The JSON could not be produced.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The figure's name is not a usable file stem.
    #[error("invalid figure name {0:?}: use letters, digits, '-', '_' and '.' only")]
    Name(String),
}

/// The font family every text of a figure is drawn in.
const FONT: &str = "sans-serif";

/// The bundled DejaVu Sans (see `assets/LICENSE-DejaVu.txt`), so that PNG text does not
/// depend on the fonts of the machine.
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font for [`FONT`], once per process.
fn ensure_font() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the bundled font DejaVuSans.ttf could not be loaded".to_owned())
        })
        .clone()
        .map_err(FigureError::Render)
}

/// Checks that `name` is a plain file stem.
fn check_name(name: &str) -> Result<(), FigureError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(FigureError::Name(name.to_owned()))
    }
}

/// Output files are for reading by anyone who can read the folder (`0644` before the
/// umask), not private like a temporary file's default `0600`.
fn readable<'a, 'b>(
    builder: &'a mut tempfile::Builder<'b, 'b>,
) -> &'a mut tempfile::Builder<'b, 'b> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644))
    }
    #[cfg(not(unix))]
    {
        builder
    }
}

/// Writes `bytes` to `dir/file_name` through a temporary file in `dir` and a rename.
pub(crate) fn write_atomic(
    dir: &Path,
    file_name: &str,
    bytes: &[u8],
) -> Result<PathBuf, FigureError> {
    let target = dir.join(file_name);
    let mut tmp = readable(
        tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".tmp"),
    )
    .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| FigureError::Io(e.error))?;
    Ok(target)
}

/// Writes `fig` into `dir` (created if missing) as `<name>.json`, `<name>.svg` and
/// `<name>.png` ([`FIGURE_WIDTH`] × [`FIGURE_HEIGHT`]), each atomically.
///
/// The JSON is `{"schema": "dealer-free-sis/figure", "schema_version": 1, "figure": <fig>,
/// "data": <data>}`, pretty-printed; `data` is whatever the experiment wants to keep next to
/// the figure (raw measurements, parameters). Non-finite numbers in `fig` become `null`.
///
/// # Errors
/// [`FigureError::Name`] for a name that is not a plain file stem, [`FigureError::Io`] when a
/// file cannot be written, [`FigureError::Render`] when drawing fails.
pub fn write_figure(
    dir: &Path,
    fig: &Figure,
    data: &serde_json::Value,
) -> Result<FigureFiles, FigureError> {
    check_name(&fig.name)?;
    ensure_font()?;
    std::fs::create_dir_all(dir)?;
    let prepared = render::prepare(fig);

    // SVG into memory, then atomically to disk.
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (FIGURE_WIDTH, FIGURE_HEIGHT)).into_drawing_area();
        render::draw(&root, &prepared)?;
        root.present().map_err(render_error)?;
    }
    let svg_path = write_atomic(dir, &format!("{}.svg", fig.name), svg.as_bytes())?;

    // PNG: the bitmap backend encodes to a path (by its extension), so it writes a temporary
    // `.png` in `dir` which is then renamed into place.
    let png_path = dir.join(format!("{}.png", fig.name));
    {
        let tmp = readable(
            tempfile::Builder::new()
                .prefix(&format!(".{}.", fig.name))
                .suffix(".tmp.png"),
        )
        .tempfile_in(dir)?;
        {
            let root =
                BitMapBackend::new(tmp.path(), (FIGURE_WIDTH, FIGURE_HEIGHT)).into_drawing_area();
            render::draw(&root, &prepared)?;
            root.present().map_err(render_error)?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&png_path)
            .map_err(|e| FigureError::Io(e.error))?;
    }

    let document = serde_json::json!({
        "schema": FIGURE_SCHEMA,
        "schema_version": FIGURE_SCHEMA_VERSION,
        "figure": fig,
        "render_notes": prepared.render_notes,
        "data": data,
    });
    let mut json = serde_json::to_vec_pretty(&document)?;
    json.push(b'\n');
    let json_path = write_atomic(dir, &format!("{}.json", fig.name), &json)?;

    Ok(FigureFiles {
        json: json_path,
        svg: svg_path,
        png: png_path,
        render_notes: prepared.render_notes,
    })
}

/// A drawing error as a [`FigureError::Render`].
fn render_error<E: std::fmt::Display>(e: E) -> FigureError {
    FigureError::Render(e.to_string())
}

/// Formats a tick value compactly: integers without decimals, at most four significant
/// digits, scientific notation for very large or small magnitudes.
pub(crate) fn format_tick(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    if v == 0.0 {
        return "0".to_owned();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.2e}");
        return match s.split_once('e') {
            Some((mantissa, exp)) => {
                let mantissa = trim_zeros(mantissa);
                format!("{mantissa}e{exp}")
            }
            None => s,
        };
    }
    let digits = 4 - (a.log10().floor() as i32 + 1);
    let decimals = digits.clamp(0, 6) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_owned()
}

/// `"1.500"` → `"1.5"`, `"2.000"` → `"2"`; leaves strings without a point alone.
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(1000.0), "1000");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(0.125), "0.125");
        assert_eq!(format_tick(12.34567), "12.35");
        assert_eq!(format_tick(1.5e7), "1.5e7");
        assert_eq!(format_tick(1e-5), "1e-5");
        assert_eq!(format_tick(f64::NAN), "");
    }

    #[test]
    fn names_are_file_stems() {
        assert!(check_name("dkg_overhead").is_ok());
        assert!(check_name("a-1.b").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
