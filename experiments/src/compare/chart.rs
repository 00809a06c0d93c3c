//! The grouped bar chart of a comparison (plotters' SVG backend, no font feature, as in
//! `report/plot.rs`): one bar per cell at its median, an error bar from its min to its
//! max. Bars are coloured by the value of the first axis that varies (the series, in
//! the legend) and grouped along x by the values of the other varying axes.

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Cell, Spread};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
const HEADER: u32 = 70;
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Where each cell's bar goes: its group (x position) and series (colour), with the
/// names of both, in first-seen order.
struct Layout {
    groups: Vec<String>,
    series: Vec<String>,
    /// Per cell: (group index, series index).
    place: Vec<(usize, usize)>,
}

fn layout(cells: &[Cell]) -> Layout {
    let mut groups: Vec<String> = Vec::new();
    let mut series: Vec<String> = Vec::new();
    let mut place = Vec::new();
    for cell in cells {
        let (s, g) = match cell.varying.split_first() {
            Some(((_, first), rest)) => (
                first.clone(),
                rest.iter()
                    .map(|(axis, v)| super::short_value(axis, v))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => (cell.label.clone(), String::new()),
        };
        let gi = groups.iter().position(|x| *x == g).unwrap_or_else(|| {
            groups.push(g.clone());
            groups.len() - 1
        });
        let si = series.iter().position(|x| *x == s).unwrap_or_else(|| {
            series.push(s.clone());
            series.len() - 1
        });
        place.push((gi, si));
    }
    Layout {
        groups,
        series,
        place,
    }
}

/// The chart as an SVG document: `values[i]` is cell `i`'s spread; unmeasured cells
/// (NaN) get no bar.
pub fn bar_chart(
    title: &str,
    subtitle: &str,
    y_desc: &str,
    cells: &[Cell],
    values: &[Spread],
) -> Result<String> {
    let layout = layout(cells);
    let top = values
        .iter()
        .flat_map(|s| [s.max, s.median])
        .filter(|v| v.is_finite() && *v >= 0.0)
        .fold(0.0_f64, f64::max);
    let y_hi = if top > 0.0 { top * 1.15 } else { 1.0 };
    let groups = layout.groups.len().max(1) as f64;
    let bar_width = 0.8 / layout.series.len().max(1) as f64;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let left = Pos::new(HPos::Left, VPos::Top);
        root.draw(&Text::new(
            title.to_string(),
            (16, 10),
            ("sans-serif", 24.0)
                .into_font()
                .style(FontStyle::Bold)
                .color(&BLACK)
                .pos(left),
        ))?;
        root.draw(&Text::new(
            subtitle.to_string(),
            (16, 40),
            ("sans-serif", 16.0)
                .into_font()
                .color(&RGBColor(90, 90, 90))
                .pos(left),
        ))?;
        // Legend: a swatch and the series name each, right of the subtitle line.
        let mut x = WIDTH as i32 - 16;
        for (i, name) in layout.series.iter().enumerate().rev() {
            let width = (name.chars().count() as f64 * 16.0 / 1.24 * 0.6).ceil() as i32;
            x -= width;
            root.draw(&Text::new(
                name.clone(),
                (x, 24),
                ("sans-serif", 16.0)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x -= 20;
            root.draw(&Rectangle::new(
                [(x, 18), (x + 14, 30)],
                PALETTE[i % PALETTE.len()].filled(),
            ))?;
            x -= 18;
        }

        let (_, body) = root.split_vertically(HEADER);
        let mut context = ChartBuilder::on(&body)
            .margin_left(12)
            .margin_right(24)
            .margin_bottom(8)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..groups, 0.0..y_hi)?;
        context
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(8)
            .y_desc(y_desc)
            .axis_desc_style(("sans-serif", 18.0))
            .label_style(("sans-serif", 15.0))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(RGBColor(242, 242, 242))
            .draw()?;

        for (g, name) in layout.groups.iter().enumerate() {
            let (x, y) = context.backend_coord(&(g as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                name.clone(),
                (x, y + 10),
                ("sans-serif", 15.0)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        for ((g, s), spread) in layout.place.iter().zip(values) {
            if !spread.median.is_finite() {
                continue;
            }
            let x0 = *g as f64 + 0.1 + *s as f64 * bar_width;
            let color = PALETTE[s % PALETTE.len()];
            context.draw_series(std::iter::once(Rectangle::new(
                [
                    (x0 + bar_width * 0.05, 0.0),
                    (x0 + bar_width * 0.95, spread.median),
                ],
                color.filled(),
            )))?;
            if spread.min < spread.max {
                let mid = x0 + bar_width / 2.0;
                let cap = bar_width * 0.15;
                let style = BLACK.stroke_width(2);
                for points in [
                    vec![(mid, spread.min), (mid, spread.max)],
                    vec![(mid - cap, spread.min), (mid + cap, spread.min)],
                    vec![(mid - cap, spread.max), (mid + cap, spread.max)],
                ] {
                    context.draw_series(std::iter::once(PathElement::new(points, style)))?;
                }
            }
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::CompareSpec;
    use std::path::Path;

    fn cells(matrix: &str) -> Vec<Cell> {
        toml::from_str::<CompareSpec>(matrix)
            .unwrap()
            .cells(Path::new("t"), Path::new("o"))
            .unwrap()
    }

    #[test]
    fn the_first_varying_axis_colours_and_the_rest_group() {
        let c = cells(
            "[matrix]\nexecutors = [\"sequential\", \"block-stm\"]\nworkloads = [\"transfer\", \"dex\"]\nzipf = [0.0, 0.8]",
        );
        let l = layout(&c);
        assert_eq!(l.series, ["sequential", "block-stm"]);
        assert_eq!(
            l.groups,
            [
                "transfer zipf=0",
                "transfer zipf=0.8",
                "dex zipf=0",
                "dex zipf=0.8"
            ]
        );
        assert_eq!(l.place[5], (1, 1));
        let single = layout(&cells(""));
        assert_eq!((single.groups.len(), single.series.len()), (1, 1));
    }

    #[test]
    fn bars_have_error_bars_only_with_a_range_and_nan_cells_no_bar() {
        let c = cells("[matrix]\nexecutors = [\"sequential\", \"block-stm\", \"access-list\"]");
        let spread = |median, min, max| Spread { median, min, max };
        let svg = bar_chart(
            "t",
            "s",
            "tx/s",
            &c,
            &[
                spread(10.0, 8.0, 12.0),
                spread(20.0, 20.0, 20.0),
                spread(f64::NAN, f64::NAN, f64::NAN),
            ],
        )
        .unwrap();
        assert!(svg.contains("access-list"), "legend lists every series");
        // Legend swatches (3) + bars (2); error bar: 3 lines, for the first cell only.
        assert_eq!(svg.matches("<rect").count() - 1, 5, "{svg}");
        assert_eq!(svg.matches("stroke-width=\"2\"").count(), 3, "{svg}");
    }
}
