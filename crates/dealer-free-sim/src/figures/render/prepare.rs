//! Cleaning a [`Figure`]'s data for drawing ([`prepare`]): what cannot be drawn is left out
//! and noted, axis ranges are padded and never empty (an axis with chosen ticks spans them and
//! the data, not the decades around them), panels share one x range, and a grid keeps only
//! the cells inside it.

use std::borrow::Cow;

use crate::figures::{Figure, FigureKind, GridCell};

/// A figure with its data cleaned for drawing.
pub(crate) struct Prepared<'a> {
    pub(super) fig: Cow<'a, Figure>,
    /// Logarithmic x axis in effect (never for bars).
    pub(super) x_log: bool,
    pub(super) y_log: bool,
    pub(super) x_range: (f64, f64),
    pub(super) y_range: (f64, f64),
    /// A linear x axis whose points all lie on integers, spanning at most
    /// [`INTEGER_AXIS_SPAN`]: labelled at integers only.
    pub(super) integer_x: bool,
    /// Category labels (Bars), numbered when the figure has none.
    pub(super) categories: Vec<String>,
    /// Lines: the drawable points of each series, sorted by x.
    pub(super) lines: Vec<Vec<(f64, f64)>>,
    /// Bars: per series, per category, the drawable value.
    pub(super) bars: Vec<Vec<Option<f64>>>,
    /// Lines: the x values labelled (the figure's `x_ticks` that can be drawn); empty: the
    /// axis' own ticks.
    pub(super) x_ticks: Vec<f64>,
    /// Lines with panels: each panel prepared as a figure of its own, over one x range.
    pub(super) panels: Vec<Prepared<'static>>,
    /// Grid: the cells to draw (those inside the grid).
    pub(super) cells: Vec<GridCell>,
    /// What was left out or adjusted.
    pub(crate) render_notes: Vec<String>,
}

/// The widest linear x axis of integer points that is labelled at integers only.
const INTEGER_AXIS_SPAN: f64 = 16.0;

/// Cleans `fig`'s data: non-finite values and values ≤ 0 on a log axis are left out (with a
/// note), axis ranges are padded and never empty; panels share one x range.
pub(crate) fn prepare(fig: &Figure) -> Prepared<'_> {
    if fig.kind == FigureKind::Grid {
        return prepare_grid(fig);
    }
    if fig.kind != FigureKind::Lines || fig.panels.is_empty() {
        return prepare_one(Cow::Borrowed(fig));
    }
    let mut notes = Vec::new();
    let mut panels: Vec<Prepared<'static>> = fig
        .panels
        .iter()
        .map(|panel| {
            let mut sub = Figure::lines(
                fig.name.clone(),
                panel.title.clone(),
                fig.x_label.clone(),
                panel.y_label.clone(),
            )
            .with_log_axes(fig.x_log, panel.y_log)
            .with_x_ticks(fig.x_ticks.clone());
            sub.series.clone_from(&panel.series);
            let prepared = prepare_one(Cow::Owned(sub));
            for note in &prepared.render_notes {
                notes.push(format!("panel “{}”: {note}", panel.title));
            }
            prepared
        })
        .collect();
    // One x range over every panel.
    let lo = panels
        .iter()
        .map(|p| p.x_range.0)
        .fold(f64::INFINITY, f64::min);
    let hi = panels
        .iter()
        .map(|p| p.x_range.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let integer_x = panels.iter().all(|p| p.integer_x);
    for p in &mut panels {
        p.x_range = (lo, hi);
        p.integer_x = integer_x && hi - lo <= INTEGER_AXIS_SPAN;
    }
    let (x_range, y_range) = panels
        .first()
        .map_or(((0.0, 1.0), (0.0, 1.0)), |p| (p.x_range, p.y_range));
    Prepared {
        x_log: panels.first().is_some_and(|p| p.x_log),
        y_log: false,
        x_range,
        y_range,
        integer_x,
        categories: Vec::new(),
        lines: Vec::new(),
        bars: Vec::new(),
        x_ticks: panels
            .first()
            .map(|p| p.x_ticks.clone())
            .unwrap_or_default(),
        panels,
        cells: Vec::new(),
        render_notes: notes,
        fig: Cow::Borrowed(fig),
    }
}

/// A grid's cells, those outside the grid left out (with a note).
fn prepare_grid(fig: &Figure) -> Prepared<'_> {
    let mut notes = Vec::new();
    let mut cells = Vec::new();
    match &fig.grid {
        None => notes.push("no data: the grid figure has no grid".to_owned()),
        Some(g) => {
            if g.rows.is_empty() || g.columns.is_empty() {
                notes.push("no data: the grid has no rows or no columns".to_owned());
            }
            let (inside, outside): (Vec<_>, Vec<_>) = g
                .cells
                .iter()
                .cloned()
                .partition(|c| c.row < g.rows.len() && c.column < g.columns.len());
            if !outside.is_empty() {
                notes.push(format!(
                    "{} cell(s) outside the grid left out",
                    outside.len()
                ));
            }
            cells = inside;
        }
    }
    Prepared {
        fig: Cow::Borrowed(fig),
        x_log: false,
        y_log: false,
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.0),
        integer_x: false,
        categories: Vec::new(),
        lines: Vec::new(),
        bars: Vec::new(),
        x_ticks: Vec::new(),
        panels: Vec::new(),
        cells,
        render_notes: notes,
    }
}

/// [`prepare`] for one chart (bars, or lines without panels).
fn prepare_one(fig: Cow<'_, Figure>) -> Prepared<'_> {
    let mut notes = Vec::new();
    let y_log = fig.y_log;
    let mut x_log = fig.x_log;
    let mut categories = fig.categories.clone();
    let mut lines = Vec::new();
    let mut bars = Vec::new();
    let mut x_ticks = Vec::new();
    let (mut x_range, y_range);
    if fig.series.is_empty() {
        notes.push("no data: the figure has no series".to_owned());
    }
    match fig.kind {
        FigureKind::Lines => {
            let (mut non_finite, mut x_nonpos, mut y_nonpos, mut huge) = (0usize, 0, 0, 0);
            for s in &fig.series {
                let mut pts: Vec<(f64, f64)> = Vec::with_capacity(s.points.len());
                for &(x, y) in &s.points {
                    if !x.is_finite() || !y.is_finite() {
                        non_finite += 1;
                    } else if x_log && x <= 0.0 {
                        x_nonpos += 1;
                    } else if y_log && y <= 0.0 {
                        y_nonpos += 1;
                    } else if !drawable(x, x_log) || !drawable(y, y_log) {
                        huge += 1;
                    } else {
                        pts.push((x, y));
                    }
                }
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                if pts.is_empty() {
                    notes.push(format!("series “{}” has no drawable points", s.name));
                }
                lines.push(pts);
            }
            if non_finite > 0 {
                notes.push(format!(
                    "{non_finite} point(s) with a non-finite coordinate left out"
                ));
            }
            if x_nonpos > 0 {
                notes.push(format!(
                    "{x_nonpos} point(s) with x ≤ 0 left out (logarithmic x axis)"
                ));
            }
            if y_nonpos > 0 {
                notes.push(format!(
                    "{y_nonpos} point(s) with y ≤ 0 left out (logarithmic y axis)"
                ));
            }
            if huge > 0 {
                notes.push(format!(
                    "{huge} point(s) with a coordinate beyond ±1e250 (or beyond 1e±150 on a \
                     logarithmic axis) left out"
                ));
            }
            x_range = axis_range(lines.iter().flatten().map(|p| p.0), x_log, false);
            y_range = axis_range(lines.iter().flatten().map(|p| p.1), y_log, false);
            x_ticks = fig
                .x_ticks
                .iter()
                .copied()
                .filter(|&v| v.is_finite() && (!x_log || v > 0.0) && drawable(v, x_log))
                .collect();
            x_ticks.sort_by(f64::total_cmp);
            x_ticks.dedup();
            if x_ticks.len() < fig.x_ticks.len() {
                notes.push(format!(
                    "{} x tick(s) that cannot be drawn left out",
                    fig.x_ticks.len() - x_ticks.len()
                ));
            }
            if !x_ticks.is_empty() {
                let xs = x_ticks
                    .iter()
                    .copied()
                    .chain(lines.iter().flatten().map(|p| p.0));
                x_range = tick_range(xs, x_log);
            }
        }
        FigureKind::Grid => {
            // Grids are prepared by `prepare_grid`.
            x_range = (0.0, 1.0);
            y_range = (0.0, 1.0);
        }
        FigureKind::Bars => {
            if x_log {
                notes.push("logarithmic x axis ignored for a bar chart".to_owned());
                x_log = false;
            }
            let longest = fig.series.iter().map(|s| s.values.len()).max().unwrap_or(0);
            if categories.is_empty() && longest > 0 {
                notes.push("no categories given: numbered".to_owned());
                categories = (1..=longest).map(|i| i.to_string()).collect();
            }
            let (mut non_finite, mut nonpos, mut huge, mut extra, mut missing) = (0, 0, 0, 0, 0);
            for s in &fig.series {
                extra += s.values.len().saturating_sub(categories.len());
                missing += categories.len().saturating_sub(s.values.len());
                let row: Vec<Option<f64>> = (0..categories.len())
                    .map(|i| match s.values.get(i).copied() {
                        None => None,
                        Some(v) if !v.is_finite() => {
                            non_finite += 1;
                            None
                        }
                        Some(v) if y_log && v <= 0.0 => {
                            nonpos += 1;
                            None
                        }
                        Some(v) if !drawable(v, y_log) => {
                            huge += 1;
                            None
                        }
                        Some(v) => Some(v),
                    })
                    .collect();
                bars.push(row);
            }
            if non_finite > 0 {
                notes.push(format!("{non_finite} non-finite value(s) left out"));
            }
            if nonpos > 0 {
                notes.push(format!(
                    "{nonpos} value(s) ≤ 0 left out (logarithmic y axis)"
                ));
            }
            if huge > 0 {
                notes.push(format!(
                    "{huge} value(s) beyond ±1e250 (or beyond 1e±150 on a logarithmic axis) left out"
                ));
            }
            if extra > 0 {
                notes.push(format!(
                    "{extra} value(s) beyond the last category left out"
                ));
            }
            if missing > 0 {
                notes.push(format!("{missing} bar(s) without a value"));
            }
            let n = categories.len().max(1) as f64;
            x_range = (-0.5, n - 0.5);
            y_range = axis_range(bars.iter().flatten().flatten().copied(), y_log, true);
        }
    }
    let integer_x = fig.kind == FigureKind::Lines
        && !x_log
        && x_ticks.is_empty()
        && lines.iter().flatten().next().is_some()
        && lines.iter().flatten().all(|p| p.0.fract() == 0.0)
        && x_range.1 - x_range.0 <= INTEGER_AXIS_SPAN;
    Prepared {
        fig,
        x_log,
        y_log,
        x_range,
        integer_x,
        y_range,
        categories,
        lines,
        bars,
        x_ticks,
        panels: Vec::new(),
        cells: Vec::new(),
        render_notes: notes,
    }
}

/// The range of an axis labelled at chosen values: from the smallest of `values` to the
/// largest, padded by 4% of the span (of its logarithm on a log axis), never widened to powers
/// of ten. `values` are finite (and > 0 when `log`).
pub(super) fn tick_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let pad = if hi / lo < 1.000_001 {
            1.5
        } else {
            (hi / lo).powf(0.04)
        };
        ((lo / pad).max(LOG_MIN), (hi * pad).min(LOG_MAX))
    } else {
        let span = hi - lo;
        let pad = if span > 0.0 {
            span * 0.04
        } else {
            hi.abs().max(1.0) * 0.1
        };
        ((lo - pad).max(-LINEAR_MAX), (hi + pad).min(LINEAR_MAX))
    }
}

/// A padded, non-empty axis range over `values` (which are finite, and > 0 when `log`).
/// `include_zero` (bars on a linear axis) keeps the zero baseline in range.
fn axis_range(values: impl Iterator<Item = f64>, log: bool, include_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        let v = if log {
            v.clamp(LOG_MIN, LOG_MAX)
        } else {
            v.clamp(-LINEAR_MAX, LINEAR_MAX)
        };
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let fallback = if log { (1.0, 10.0) } else { (0.0, 1.0) };
    if !(lo.is_finite() && hi.is_finite()) {
        return fallback;
    }
    let range = if log {
        let (lo, hi) = if hi / lo < 1.000_001 {
            (lo / 2.0, hi * 2.0)
        } else {
            let pad = (hi / lo).powf(0.05);
            (lo / pad, hi * pad)
        };
        // Only powers of ten get labels on a logarithmic axis: widen a range that holds
        // fewer than two of them to the enclosing decades (a little more, so that rounding
        // keeps both ends labelled).
        let powers = hi.log10().floor() - lo.log10().ceil() + 1.0;
        if powers < 2.0 {
            let lo10 = 10f64.powf(lo.log10().floor());
            let mut hi10 = 10f64.powf(hi.log10().ceil());
            if hi10 / lo10 < 9.0 {
                hi10 *= 10.0;
            }
            (lo.min(lo10) / 1.02, hi.max(hi10) * 1.02)
        } else {
            (lo, hi)
        }
    } else {
        if include_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        let span = hi - lo;
        if span <= f64::EPSILON * hi.abs().max(lo.abs()) || span == 0.0 {
            let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
            if include_zero && lo >= 0.0 {
                (0.0, hi + pad)
            } else {
                (lo - pad, hi + pad)
            }
        } else {
            let pad = span * 0.05;
            let bottom = if include_zero && lo == 0.0 {
                0.0
            } else {
                lo - pad
            };
            let top = if include_zero && hi == 0.0 {
                0.0
            } else {
                hi + pad
            };
            (bottom, top)
        }
    };
    // Keep ranges where the axes' arithmetic is exact enough (and terminates: plotters'
    // logarithmic ticks loop over decades from the range's start).
    let range = if log {
        (
            range.0.clamp(LOG_MIN, LOG_MAX),
            range.1.clamp(LOG_MIN, LOG_MAX),
        )
    } else {
        (
            range.0.clamp(-LINEAR_MAX, LINEAR_MAX),
            range.1.clamp(-LINEAR_MAX, LINEAR_MAX),
        )
    };
    if range.0.is_finite() && range.1.is_finite() && range.1 > range.0 {
        range
    } else {
        fallback
    }
}

/// Whether a finite value (> 0 when `log`) lies within the axes' limits.
fn drawable(v: f64, log: bool) -> bool {
    if log {
        (LOG_MIN..=LOG_MAX).contains(&v)
    } else {
        v.abs() <= LINEAR_MAX
    }
}

/// The smallest bound of a logarithmic axis (the axis' span must stay finite: plotters
/// counts its decades from `max / min`).
const LOG_MIN: f64 = 1e-150;
/// The largest bound of a logarithmic axis.
const LOG_MAX: f64 = 1e150;
/// The largest magnitude of a linear axis' bounds.
const LINEAR_MAX: f64 = 1e250;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_ticks_span_the_data_not_the_decades() {
        let (lo, hi) = tick_range([3.0, 5.0, 8.0, 64.0].into_iter(), true);
        assert!(
            (2.5..3.0).contains(&lo) && (64.0..80.0).contains(&hi),
            "{lo} {hi}"
        );
        let fig = Figure::lines("f", "t", "x", "y")
            .with_log_axes(true, true)
            .with_x_ticks(vec![3.0, 64.0])
            .with_series(crate::figures::Series::line(
                "s",
                vec![(3.0, 1.0), (64.0, 9.0)],
            ));
        let p = prepare(&fig);
        assert!(p.x_range.0 > 2.5 && p.x_range.0 < 3.0, "{:?}", p.x_range);
        // Without ticks the same data is widened to the decades 1 to 100.
        let mut plain = fig.clone();
        plain.x_ticks.clear();
        assert!(prepare(&plain).x_range.0 < 1.0);
        // Panels share the x range.
        let panel = |lo: f64| crate::figures::Panel {
            title: "p".into(),
            y_label: "y".into(),
            y_log: false,
            series: vec![crate::figures::Series::line(
                "s",
                vec![(lo, 1.0), (64.0, 2.0)],
            )],
        };
        let fig = fig.with_panel(panel(5.0)).with_panel(panel(3.0));
        let p = prepare(&fig);
        assert_eq!(p.panels.len(), 2);
        assert_eq!(p.panels[0].x_range, p.panels[1].x_range);
        assert!(p.panels[0].x_range.0 > 2.5, "{:?}", p.panels[0].x_range);
    }
}
