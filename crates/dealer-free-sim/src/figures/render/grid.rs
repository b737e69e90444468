//! Drawing a [`Grid`]: the columns' label on top, one label per column under it, the rows'
//! labels on the left, and one coloured cell per row and column with its text inside. Labels
//! and texts too wide for their place are shortened with "…"; cells never overlap; cells too
//! small for a label or text (a grid of hundreds of rows or columns) are drawn without.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, fit};
use crate::figures::{CellStatus, Figure, FigureError, Grid, GridCell, render_error};

/// The fill of a cell of `status`: light enough for black text on it.
pub(super) fn cell_color(status: CellStatus) -> RGBColor {
    match status {
        CellStatus::Good => RGBColor(161, 217, 155),
        CellStatus::Partial => RGBColor(253, 208, 121),
        CellStatus::Bad => RGBColor(239, 138, 130),
        CellStatus::Empty => RGBColor(236, 236, 236),
    }
}

/// Draws `grid` (of `fig`) on `area`, with `cells` (those inside the grid).
pub(super) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    grid: &Grid,
    cells: &[GridCell],
) -> Result<(), FigureError> {
    let (w, h) = area.dim_in_pixel();
    let label_style = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let header_style = (FONT, 16)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    let column_style = (FONT, 15)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let cell_style = (FONT, 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));

    let left = 10i32;
    let top = 56i32;
    let mut label_w = area
        .estimate_text_size(&fig.y_label, &label_style)
        .map_err(render_error)?
        .0;
    for row in &grid.rows {
        let width = area
            .estimate_text_size(row, &label_style)
            .map_err(render_error)?
            .0;
        label_w = label_w.max(width);
    }
    let label_w = (label_w + 16).clamp(40, w * 2 / 5);
    let columns = grid.columns.len().max(1) as u32;
    let rows = grid.rows.len().max(1) as u32;
    let cells_x = left + label_w as i32;
    let cell_w = (w.saturating_sub(label_w + 20) / columns).max(1);
    let cell_h = (h.saturating_sub(top as u32 + 8) / rows).clamp(1, 64);
    let cells_w = cell_w * columns;
    // A white gap between cells, and labels, only where there is room for them.
    let gap = i32::from(cell_w >= 6 && cell_h >= 6);
    let row_labels = cell_h >= 14;
    let column_labels = cell_w >= 12;

    // The columns' label, then each column's.
    let header = fit(area, &fig.x_label, &header_style, cells_w)?;
    area.draw_text(&header, &header_style, (cells_x + cells_w as i32 / 2, 4))
        .map_err(render_error)?;
    for (j, column) in grid.columns.iter().enumerate().filter(|_| column_labels) {
        let x = cells_x + j as i32 * cell_w as i32 + cell_w as i32 / 2;
        let text = fit(area, column, &column_style, cell_w.saturating_sub(4))?;
        area.draw_text(&text, &column_style, (x, top - 14))
            .map_err(render_error)?;
    }
    // The rows' label over the row labels.
    let row_header = fit(area, &fig.y_label, &label_style, label_w.saturating_sub(8))?;
    area.draw_text(&row_header, &label_style, (left, top - 14))
        .map_err(render_error)?;

    for (i, row) in grid.rows.iter().enumerate() {
        let y = top + i as i32 * cell_h as i32;
        if row_labels {
            let text = fit(area, row, &label_style, label_w.saturating_sub(8))?;
            area.draw_text(&text, &label_style, (left, y + cell_h as i32 / 2))
                .map_err(render_error)?;
        }
        for j in 0..grid.columns.len() {
            let x = cells_x + j as i32 * cell_w as i32;
            area.draw(&Rectangle::new(
                [
                    (x + gap, y + gap),
                    (x + cell_w as i32 - gap, y + cell_h as i32 - gap),
                ],
                cell_color(CellStatus::Empty).filled(),
            ))
            .map_err(render_error)?;
        }
    }
    let line_h = 15i32;
    for cell in cells {
        let x = cells_x + cell.column as i32 * cell_w as i32;
        let y = top + cell.row as i32 * cell_h as i32;
        area.draw(&Rectangle::new(
            [
                (x + gap, y + gap),
                (x + cell_w as i32 - gap, y + cell_h as i32 - gap),
            ],
            cell_color(cell.status).filled(),
        ))
        .map_err(render_error)?;
        let fitting = if cell_w >= 20 {
            (cell_h as i32 / line_h).max(0) as usize
        } else {
            0
        };
        let lines: Vec<&String> = cell.text.iter().take(fitting).collect();
        let first = y + cell_h as i32 / 2 - (lines.len() as i32 - 1) * line_h / 2;
        for (k, line) in lines.iter().enumerate() {
            let text = fit(area, line, &cell_style, cell_w.saturating_sub(6))?;
            area.draw_text(
                &text,
                &cell_style,
                (x + cell_w as i32 / 2, first + k as i32 * line_h),
            )
            .map_err(render_error)?;
        }
    }
    Ok(())
}
