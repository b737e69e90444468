//! Drawing a [`Figure`](super::Figure) on any plotters backend: the data is first cleaned
//! ([`prepare`]: what cannot be drawn is left out and noted), then drawn ([`draw`]): title on
//! top, chart on the left, legend on the right, notes at the bottom. A figure with panels has its legend in one
//! row under the title and its panels side by side; a grid ([`grid`]) is drawn as cells.

mod grid;
mod prepare;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, FigureError, FigureKind, format_tick, render_error};
pub(crate) use prepare::{Prepared, prepare};

/// Draws the prepared figure on `root`.
pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    p: &Prepared<'_>,
) -> Result<(), FigureError> {
    root.fill(&WHITE).map_err(render_error)?;
    let (w, _) = root.dim_in_pixel();
    let body = root
        .titled(&p.fig.title, (FONT, 26).into_font().color(&BLACK))
        .map_err(render_error)?;
    let body = body.margin(10, 0, 0, 0);

    let mut notes: Vec<&str> = p.fig.notes.iter().map(String::as_str).collect();
    notes.extend(p.render_notes.iter().map(String::as_str));
    const MAX_NOTES: usize = 5;
    let shown = notes.len().min(MAX_NOTES);
    let notes_h = if shown == 0 { 0 } else { shown as u32 * 20 + 8 };
    let (main, notes_area) = body.split_vertically(body.dim_in_pixel().1.saturating_sub(notes_h));

    if p.fig.kind == FigureKind::Grid {
        let legend = legend_entries(p);
        let legend_w = legend_width(&legend, w);
        let (chart_area, legend_area) = main.split_horizontally(w - legend_w);
        let empty = super::Grid {
            rows: Vec::new(),
            columns: Vec::new(),
            cells: Vec::new(),
            legend: Vec::new(),
        };
        let g = p.fig.grid.as_ref().unwrap_or(&empty);
        grid::draw(&chart_area, &p.fig, g, &p.cells)?;
        draw_legend(&legend_area, &legend)?;
    } else if !p.panels.is_empty() {
        let legend = legend_entries(p);
        let (legend_area, charts) = main.split_vertically(30);
        draw_legend_row(&legend_area, &legend)?;
        let k = p.panels.len() as u32;
        let (cw, ch) = charts.dim_in_pixel();
        let width = cw / k;
        for (i, panel) in p.panels.iter().enumerate() {
            let x0 = i as i32 * width as i32;
            let area = charts.clone().shrink((x0, 0), (width, ch));
            let (heading, chart_area) = area.split_vertically(24);
            let style = (FONT, 17)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            let text = fit(&heading, &panel.fig.title, &style, width.saturating_sub(10))?;
            heading
                .draw_text(&text, &style, (width as i32 / 2, 2))
                .map_err(render_error)?;
            draw_axes(&chart_area, panel)?;
        }
    } else {
        let legend = legend_entries(p);
        let legend_w = legend_width(&legend, w);
        let (chart_area, legend_area) = main.split_horizontally(w - legend_w);
        draw_axes(&chart_area, p)?;
        draw_legend(&legend_area, &legend)?;
    }

    let note_style = (FONT, 14).into_font().color(&RGBColor(80, 80, 80));
    for (i, note) in notes.iter().take(shown).enumerate() {
        let text = if i + 1 == MAX_NOTES && notes.len() > MAX_NOTES {
            format!("… and {} more note(s)", notes.len() - MAX_NOTES + 1)
        } else {
            format!("Note: {note}")
        };
        let text = fit(&notes_area, &text, &note_style, w.saturating_sub(40))?;
        notes_area
            .draw_text(&text, &note_style, (20, 4 + 20 * i as i32))
            .map_err(render_error)?;
    }
    Ok(())
}

/// Draws `p`'s chart on `area` with the axis types its log flags ask for.
fn draw_axes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Prepared<'_>,
) -> Result<(), FigureError> {
    match (p.x_log, p.y_log) {
        (false, false) => draw_chart(area, p, linear(p.x_range), linear(p.y_range)),
        (true, false) => draw_chart(area, p, logarithmic(p.x_range), linear(p.y_range)),
        (false, true) => draw_chart(area, p, linear(p.x_range), logarithmic(p.y_range)),
        (true, true) => draw_chart(area, p, logarithmic(p.x_range), logarithmic(p.y_range)),
    }
}

/// The mark of a legend entry.
enum Mark {
    /// Series `i` of a bar chart (a filled box).
    Bar(usize),
    /// Series `i` of a line chart (a line with its marker).
    Line(usize),
    /// A grid colour.
    Cell(super::CellStatus),
}

/// The legend's entries: the series (of the first panel, for panels), or the grid's colours.
fn legend_entries<'p>(p: &'p Prepared<'_>) -> Vec<(Mark, &'p str)> {
    if p.fig.kind == FigureKind::Grid {
        return p
            .fig
            .grid
            .iter()
            .flat_map(|g| g.legend.iter())
            .map(|(status, label)| (Mark::Cell(*status), label.as_str()))
            .collect();
    }
    let series = match p.fig.panels.first() {
        Some(first) => &first.series,
        None => &p.fig.series,
    };
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mark = if p.fig.kind == FigureKind::Bars {
                Mark::Bar(i)
            } else {
                Mark::Line(i)
            };
            (mark, s.name.as_str())
        })
        .collect()
}

/// The legend column's width for `entries` in a figure `w` pixels wide.
fn legend_width(entries: &[(Mark, &str)], w: u32) -> u32 {
    let longest = entries
        .iter()
        .map(|(_, name)| name.chars().count())
        .max()
        .unwrap_or(0) as u32;
    (longest * 9 + 70).clamp(120, w / 3)
}

/// Draws one legend mark centred vertically at `y`, from x = 8 to 36 of `area`.
fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: &Mark,
    (x, y): (i32, i32),
) -> Result<(), FigureError> {
    match *mark {
        Mark::Bar(i) => area
            .draw(&Rectangle::new(
                [(x + 2, y - 7), (x + 26, y + 7)],
                series_color(i).filled(),
            ))
            .map_err(render_error),
        Mark::Line(i) => {
            let color = series_color(i);
            area.draw(&PathElement::new(
                vec![(x, y), (x + 28, y)],
                color.stroke_width(2),
            ))
            .map_err(render_error)?;
            draw_marker(area, i, (x + 14, y), color)
        }
        Mark::Cell(status) => {
            area.draw(&Rectangle::new(
                [(x + 2, y - 8), (x + 26, y + 8)],
                grid::cell_color(status).filled(),
            ))
            .map_err(render_error)?;
            area.draw(&Rectangle::new(
                [(x + 2, y - 8), (x + 26, y + 8)],
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(render_error)
        }
    }
}

/// Draws the legend as a column: one row per entry, its mark, then its name.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Mark, &str)],
) -> Result<(), FigureError> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let row_h = 26;
    let top = 20;
    let rows = ((h.saturating_sub(top as u32 + 60)) / row_h as u32).max(1) as usize;
    for (i, (mark, name)) in entries.iter().enumerate() {
        let y = top + i as i32 * row_h;
        if i + 1 == rows && entries.len() > rows {
            let more = format!("… {} more", entries.len() - i);
            area.draw_text(&more, &style, (10, y))
                .map_err(render_error)?;
            break;
        }
        draw_mark(area, mark, (8, y))?;
        let name = fit(area, name, &style, w.saturating_sub(52))?;
        area.draw_text(&name, &style, (44, y))
            .map_err(render_error)?;
    }
    Ok(())
}

/// Draws the legend as one centred row (figures with panels): each entry's mark, then its
/// name; entries that do not fit are left out with "… N more".
fn draw_legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Mark, &str)],
) -> Result<(), FigureError> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let widths = entries
        .iter()
        .map(|(_, name)| {
            area.estimate_text_size(name, &style)
                .map(|d| d.0 + 36 + 24)
                .map_err(render_error)
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let mut fitting = 0;
    let mut total = 0;
    for wi in &widths {
        if total + wi > w.saturating_sub(80) {
            break;
        }
        total += wi;
        fitting += 1;
    }
    let y = h as i32 / 2;
    let mut x = (w.saturating_sub(total) / 2) as i32;
    for ((mark, name), wi) in entries.iter().zip(&widths).take(fitting) {
        draw_mark(area, mark, (x, y))?;
        area.draw_text(name, &style, (x + 36, y))
            .map_err(render_error)?;
        x += *wi as i32;
    }
    if fitting < entries.len() {
        let more = format!("… {} more", entries.len() - fitting);
        area.draw_text(&more, &style, (x, y))
            .map_err(render_error)?;
    }
    Ok(())
}

/// The bound every axis type used here satisfies.
trait Axis: Ranged<ValueType = f64> + ValueFormatter<f64> {}
impl<T: Ranged<ValueType = f64> + ValueFormatter<f64>> Axis for T {}

/// A linear axis.
fn linear(range: (f64, f64)) -> RangedCoordf64 {
    (range.0..range.1).into()
}

/// A logarithmic axis.
fn logarithmic(range: (f64, f64)) -> LogCoord<f64> {
    (range.0..range.1).log_scale().into()
}

/// Draws the axes, grid and data of `p` on `area`.
fn draw_chart<DB: DrawingBackend, X: Axis, Y: Axis>(
    area: &DrawingArea<DB, Shift>,
    p: &Prepared<'_>,
    x: X,
    y: Y,
) -> Result<(), FigureError> {
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)
        .map_err(render_error)?;
    let tick = |v: &f64| format_tick(*v);
    let integer_tick = |v: &f64| {
        if v.fract() == 0.0 {
            format_tick(*v)
        } else {
            String::new()
        }
    };
    let no_tick = |_: &f64| String::new();
    let bars = p.fig.kind == FigureKind::Bars;
    {
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(p.fig.x_label.as_str())
            .y_desc(p.fig.y_label.as_str())
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 14))
            .bold_line_style(RGBColor(205, 205, 205))
            .light_line_style(RGBColor(240, 240, 240))
            .y_labels(8)
            .y_label_formatter(&tick);
        if bars {
            // Labelled below.
            mesh.x_label_formatter(&tick).disable_x_mesh().x_labels(0);
        } else if !p.x_ticks.is_empty() {
            // Labelled below at the chosen ticks; no label of the axis' own (a logarithmic
            // axis labels its powers of ten whatever `x_labels` says).
            mesh.x_label_formatter(&no_tick)
                .disable_x_mesh()
                .x_labels(0)
                .set_tick_mark_size(LabelAreaPosition::Bottom, 0);
        } else if p.integer_x {
            // At most one label per integer (the span is small), none between.
            let span = (p.x_range.1 - p.x_range.0).floor();
            let labels = usize::try_from(span as u64).unwrap_or(10) + 1;
            mesh.x_label_formatter(&integer_tick).x_labels(labels);
        } else {
            mesh.x_label_formatter(&tick).x_labels(10);
        }
        mesh.draw().map_err(render_error)?;
    }

    if bars {
        let ns = p.bars.len().max(1) as f64;
        let group = 0.8;
        let bw = group / ns;
        let base = if p.y_log { p.y_range.0 } else { 0.0 };
        for (j, row) in p.bars.iter().enumerate() {
            let color = series_color(j);
            let rects = row.iter().enumerate().filter_map(|(i, v)| {
                let v = (*v)?;
                let x0 = i as f64 - group / 2.0 + j as f64 * bw + bw * 0.05;
                let x1 = x0 + bw * 0.9;
                Some(Rectangle::new([(x0, base), (x1, v)], color.filled()))
            });
            chart.draw_series(rects).map_err(render_error)?;
        }
        // Category labels, centred under their groups (drawn here rather than as ticks so
        // that every category is labelled whatever the tick algorithm picks).
        let n = p.categories.len().max(1) as u32;
        let (plot_w, _) = chart.plotting_area().dim_in_pixel();
        let max_w = (plot_w / n).saturating_sub(6).max(10);
        let style = (FONT, 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let (ax, ay) = area.get_base_pixel();
        for (i, c) in p.categories.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64, p.y_range.0));
            let label = fit(area, c, &style, max_w)?;
            area.draw_text(&label, &style, (px - ax, py - ay + 8))
                .map_err(render_error)?;
        }
    } else {
        if !p.x_ticks.is_empty() {
            // The chosen ticks: a light grid line and a label each.
            let (y0, y1) = p.y_range;
            for &t in &p.x_ticks {
                chart
                    .draw_series(LineSeries::new(
                        [(t, y0), (t, y1)],
                        RGBColor(205, 205, 205).stroke_width(1),
                    ))
                    .map_err(render_error)?;
            }
            let style = (FONT, 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            let (ax, ay) = area.get_base_pixel();
            for &t in &p.x_ticks {
                let (px, py) = chart.backend_coord(&(t, y0));
                area.draw_text(&format_tick(t), &style, (px - ax, py - ay + 6))
                    .map_err(render_error)?;
            }
        }
        for (i, pts) in p.lines.iter().enumerate() {
            let color = series_color(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(render_error)?;
            for &pt in pts {
                draw_marker(chart.plotting_area(), i, pt, color)?;
            }
        }
    }
    Ok(())
}

/// Draws the marker of series `i` at `at`: five shapes × ten colours tell up to 50 series apart.
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    i: usize,
    at: CT::From,
    color: RGBColor,
) -> Result<(), FigureError> {
    let shape = (i + i / 10) % 5;
    let filled = color.filled();
    let r = match shape {
        0 => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), 4, filled))),
        1 => area.draw(&(EmptyElement::at(at) + TriangleMarker::new((0, 0), 6, filled))),
        2 => area.draw(&(EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], filled))),
        3 => area.draw(&(EmptyElement::at(at) + Cross::new((0, 0), 5, color.stroke_width(2)))),
        _ => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), 5, color.stroke_width(2)))),
    };
    r.map_err(render_error)
}

/// `text`, shortened with "…" until it is at most `max_w` pixels wide in `style`.
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle<'_>,
    max_w: u32,
) -> Result<String, FigureError> {
    let width = |s: &str| {
        area.estimate_text_size(s, style)
            .map(|d| d.0)
            .map_err(render_error)
    };
    if text.is_empty() || width(text)? <= max_w {
        return Ok(text.to_owned());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut n = chars.len();
    while n > 0 {
        n -= 1;
        let candidate: String = chars[..n].iter().collect::<String>() + "…";
        if width(&candidate)? <= max_w {
            return Ok(candidate);
        }
    }
    Ok(String::new())
}

/// The colour of series `i`: the ten "tableau" colours, distinct and print-safe.
fn series_color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    COLORS[i % COLORS.len()]
}
