//! `throughput.svg` and `latency.svg`: a run's timeline drawn with plotters' SVG
//! backend, fault events as labelled vertical markers.
//!
//! Text is written as SVG `<text>` and rendered by the viewer's fonts. The header
//! (title, run parameters, legend, event labels) is placed here at fixed anchors with
//! a character-count width estimate, and plotters is built without a font feature (it
//! then uses its own size estimate), so nothing needs a font file, fontconfig or
//! freetype. Event labels sit in a band above the plot, stacked in rows so that nearby
//! events neither overlap nor get crossed by another marker, each with a dashed line
//! down through the plot at the start of the interval the event happened in. Latency
//! switches to a log scale when the largest value is 20× the typical median (a view
//! change next to the normal case), so both stay readable.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::model::{RunSummary, TimelineRow};

/// Image size in pixels.
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 540;
/// Space around the plot and for the axes' tick labels and descriptions.
const MARGIN_LEFT: i32 = 12;
const MARGIN_RIGHT: i32 = 28;
const MARGIN_BOTTOM: i32 = 8;
const Y_LABEL_AREA: i32 = 80;
const X_LABEL_AREA: i32 = 48;
/// Header: title, subtitle, then the event label rows.
const TITLE_TOP: i32 = 10;
const SUBTITLE_TOP: i32 = 38;
const EVENT_ROWS_TOP: i32 = 62;
const EVENT_ROW_HEIGHT: i32 = 17;
const MAX_EVENT_ROWS: usize = 5;
/// Font sizes (plotters divides by 1.24 for the SVG font-size).
const TITLE_FONT: f64 = 24.0;
const SUBTITLE_FONT: f64 = 16.0;
const EVENT_FONT: f64 = 15.0;
const AXIS_DESC_FONT: f64 = 18.0;
const TICK_FONT: f64 = 15.0;
/// Values and times beyond this are corrupt (no rate, latency or run length comes
/// near it) and are not plotted: axis ranges must stay finite for plotters.
const PLOTTABLE_LIMIT: f64 = 1e12;
/// The smallest latency on a log axis: 1 µs, the histogram's unit. Smaller values
/// are gaps, which also bounds the number of decades plotters has to lay out.
const LOG_AXIS_MIN_MS: f64 = 0.001;
/// Latency uses a log axis when max / median of the interval medians reaches this.
const LOG_SCALE_RATIO: f64 = 20.0;

const COMPLETED_COLOR: RGBColor = RGBColor(31, 119, 180);
const COMMITTED_COLOR: RGBColor = RGBColor(255, 127, 14);
const P50_COLOR: RGBColor = RGBColor(31, 119, 180);
const P99_COLOR: RGBColor = RGBColor(214, 39, 40);
const EVENT_COLOR: RGBColor = RGBColor(110, 110, 110);
const EVENT_TEXT_COLOR: RGBColor = RGBColor(60, 60, 60);
const SUBTITLE_COLOR: RGBColor = RGBColor(90, 90, 90);

/// Writes `throughput.svg` and `latency.svg` for a run into `dir`.
pub(crate) fn write_plots(
    dir: &Path,
    summary: &RunSummary,
    timeline: &[TimelineRow],
) -> Result<()> {
    let subtitle = run_label(summary);
    let throughput = throughput_chart(&summary.name, &subtitle, timeline);
    let latency = latency_chart(&summary.name, &subtitle, timeline);
    write_svg(&dir.join(super::THROUGHPUT_SVG), &throughput)?;
    write_svg(&dir.join(super::LATENCY_SVG), &latency)
}

fn write_svg(path: &Path, chart: &Chart) -> Result<()> {
    let svg = render_svg(chart).with_context(|| format!("drawing {}", path.display()))?;
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

/// One picture: what to draw, independent of plotters.
struct Chart {
    title: String,
    subtitle: String,
    y_desc: String,
    log_y: bool,
    /// Tick labels in thousands (`12k`): right for tx/s, odd for milliseconds.
    y_ticks_in_thousands: bool,
    /// Interval ends (seconds), finite, in row order.
    times: Vec<f64>,
    series: Vec<Series>,
    events: Vec<EventMarker>,
}

/// A line; `values[i]` belongs to `times[i]`; `None` is a gap.
struct Series {
    label: &'static str,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

/// A vertical marker at `t_secs` labelled with the events of one interval.
struct EventMarker {
    t_secs: f64,
    label: String,
}

fn throughput_chart(name: &str, subtitle: &str, timeline: &[TimelineRow]) -> Chart {
    let rows = plottable_rows(timeline);
    Chart {
        title: format!("{name}: throughput"),
        subtitle: subtitle.to_string(),
        y_desc: "throughput (tx/s)".to_string(),
        log_y: false,
        y_ticks_in_thousands: true,
        times: rows.iter().map(|r| r.t_secs).collect(),
        series: vec![
            Series {
                label: "completed (end-to-end)",
                color: COMPLETED_COLOR,
                values: rows.iter().map(|r| Some(r.completed_tps)).collect(),
            },
            Series {
                label: "committed (consensus)",
                color: COMMITTED_COLOR,
                values: rows.iter().map(|r| Some(r.committed_tps)).collect(),
            },
        ],
        events: event_markers(&rows),
    }
    .without_unplottable_values()
}

fn latency_chart(name: &str, subtitle: &str, timeline: &[TimelineRow]) -> Chart {
    let rows = plottable_rows(timeline);
    let mut chart = Chart {
        title: format!("{name}: latency"),
        subtitle: subtitle.to_string(),
        y_desc: "latency (ms)".to_string(),
        log_y: false,
        y_ticks_in_thousands: false,
        times: rows.iter().map(|r| r.t_secs).collect(),
        series: vec![
            Series {
                label: "p50",
                color: P50_COLOR,
                values: rows.iter().map(|r| r.p50_ms).collect(),
            },
            Series {
                label: "p99",
                color: P99_COLOR,
                values: rows.iter().map(|r| r.p99_ms).collect(),
            },
        ],
        events: event_markers(&rows),
    }
    .without_unplottable_values();

    let mut medians: Vec<f64> = chart.series[0].values.iter().flatten().copied().collect();
    medians.sort_by(f64::total_cmp);
    let typical = medians.get(medians.len() / 2).copied().unwrap_or(0.0);
    let (_, max) = chart.value_bounds().unwrap_or((0.0, 0.0));
    if typical > 0.0 && max / typical >= LOG_SCALE_RATIO {
        chart.log_y = true;
        chart.y_desc = "latency (ms, log scale)".to_string();
        for series in &mut chart.series {
            for value in &mut series.values {
                *value = value.filter(|v| *v >= LOG_AXIS_MIN_MS);
            }
        }
    }
    chart
}

/// Rows with a plottable time, in order; a row with a NaN time cannot be placed.
fn plottable_rows(timeline: &[TimelineRow]) -> Vec<&TimelineRow> {
    timeline
        .iter()
        .filter(|r| r.t_secs.abs() <= PLOTTABLE_LIMIT)
        .collect()
}

/// One marker per interval with events, at the interval's start: the previous row's
/// time, or 0 for the first row (the event happened somewhere in the interval, and the
/// first point showing its effect is the interval's end).
fn event_markers(rows: &[&TimelineRow]) -> Vec<EventMarker> {
    let mut markers = Vec::new();
    let mut interval_start = 0.0_f64;
    for row in rows {
        if !row.events.is_empty() {
            markers.push(EventMarker {
                t_secs: interval_start.min(row.t_secs),
                label: row.events.join("; "),
            });
        }
        interval_start = row.t_secs;
    }
    markers
}

/// "4 replicas, block-stm executor, dex workload, offered 20,000 tx/s,
/// 2026-11-25T10:42:50Z, rev 3f2a9c1": the run's key parameters for a plot's subtitle.
fn run_label(summary: &RunSummary) -> String {
    let parameter = |key: &str| -> Option<String> {
        match summary.parameters.get(key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let mut parts = Vec::new();
    let replicas = parameter("replicas")
        .or_else(|| (!summary.replicas.is_empty()).then(|| summary.replicas.len().to_string()));
    if let Some(replicas) = replicas {
        parts.push(format!("{replicas} replicas"));
    }
    let executor = parameter("executor")
        .or_else(|| (!summary.executor.name.is_empty()).then(|| summary.executor.name.clone()));
    if let Some(executor) = executor {
        parts.push(format!("{executor} executor"));
    }
    if let Some(workload) = parameter("workload") {
        parts.push(format!("{workload} workload"));
    }
    if let Some(offered) = summary.throughput.offered_tps.filter(|v| v.is_finite()) {
        parts.push(format!("offered {} tx/s", super::table::rate(offered)));
    }
    if !summary.started_at.is_empty() {
        parts.push(summary.started_at.clone());
    }
    if let Some(revision) = &summary.git_revision {
        parts.push(format!("rev {revision}"));
    }
    parts.join(", ")
}

impl Chart {
    /// Drops non-finite, huge and negative values (they become gaps): neither a rate
    /// nor a latency can be negative.
    fn without_unplottable_values(mut self) -> Self {
        for series in &mut self.series {
            for value in &mut series.values {
                *value = value.filter(|v| (0.0..=PLOTTABLE_LIMIT).contains(v));
            }
        }
        self
    }

    /// Smallest and largest value over all series, if any.
    fn value_bounds(&self) -> Option<(f64, f64)> {
        self.series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .fold(None, |bounds, v| match bounds {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })
    }

    /// The x axis: from 0 (or an earlier time) to the last time, at least 1 s wide.
    fn x_range(&self) -> (f64, f64) {
        let lo = self.times.iter().copied().fold(0.0, f64::min);
        let hi = self.times.iter().copied().fold(0.0, f64::max);
        (lo, hi.max(lo + 1.0))
    }

    /// The y axis: 0 to 10% above the largest value (linear), or from the power of ten
    /// below the smallest value (so the lowest decade is labelled) to 50% above the
    /// largest (log).
    fn y_range(&self) -> (f64, f64) {
        match (self.log_y, self.value_bounds()) {
            (true, Some((lo, hi))) if lo > 0.0 => (
                10f64.powf(lo.log10().floor()).max(LOG_AXIS_MIN_MS),
                hi * 1.5,
            ),
            (true, _) => (0.1, 10.0),
            (false, Some((_, hi))) if hi > 0.0 => (0.0, hi * 1.1),
            (false, _) => (0.0, 1.0),
        }
    }
}

/// Where an event label goes: its header row and which side of its line.
struct LabelPlacement {
    row: usize,
    right_of_line: bool,
}

/// Stacks event labels into header rows (row 0 nearest the plot) so that no two
/// labels in a row overlap and no marker line, which runs from its label down to the
/// plot, crosses another label: a label that spans another marker's position sits
/// above that marker's label, which gives a staircase for events close in time. Uses
/// the plot's pixel geometry (fixed by the margins) and estimated text widths; past
/// `MAX_EVENT_ROWS` rows labels may overlap.
fn place_event_labels(chart: &Chart) -> Vec<LabelPlacement> {
    const PAD: f64 = 4.0;
    let (x_lo, x_hi) = chart.x_range();
    let plot_left = f64::from(MARGIN_LEFT + Y_LABEL_AREA);
    let plot_right = f64::from(WIDTH as i32 - MARGIN_RIGHT);
    let spans: Vec<LabelSpan> = chart
        .events
        .iter()
        .map(|marker| {
            let x = plot_left + (marker.t_secs - x_lo) / (x_hi - x_lo) * (plot_right - plot_left);
            let width = estimated_text_width(&marker.label, EVENT_FONT) + PAD;
            let right_of_line = x + width <= f64::from(WIDTH as i32) - PAD;
            let (left, right) = if right_of_line {
                (x, x + width)
            } else {
                (x - width, x)
            };
            LabelSpan {
                x,
                left,
                right,
                right_of_line,
            }
        })
        .collect();

    // `covers(a, b)`: marker b's line would cross label a.
    let covers = |a: usize, b: usize| {
        spans[a].left - PAD <= spans[b].x && spans[b].x <= spans[a].right + PAD
    };
    let overlap = |a: usize, b: usize| {
        spans[a].left < spans[b].right + PAD && spans[b].left < spans[a].right + PAD
    };
    let must_be_above = |a: usize, b: usize| {
        if a == b || !(covers(a, b) || covers(b, a) || overlap(a, b)) {
            false
        } else if covers(a, b) != covers(b, a) {
            covers(a, b)
        } else {
            a > b
        }
    };
    let mut rows = vec![0usize; spans.len()];
    // Rows only grow and are capped, so this settles.
    let mut changed = true;
    while changed {
        changed = false;
        for a in 0..spans.len() {
            for b in 0..spans.len() {
                if must_be_above(a, b) && rows[a] <= rows[b] && rows[b] + 1 < MAX_EVENT_ROWS {
                    rows[a] = rows[b] + 1;
                    changed = true;
                }
            }
        }
    }
    spans
        .iter()
        .zip(rows)
        .map(|(span, row)| LabelPlacement {
            row,
            right_of_line: span.right_of_line,
        })
        .collect()
}

/// An event label's estimated horizontal extent in pixels, and its marker's position.
struct LabelSpan {
    x: f64,
    left: f64,
    right: f64,
    right_of_line: bool,
}

/// Rough rendered width of `text` in pixels: 0.6 em per character.
fn estimated_text_width(text: &str, font: f64) -> f64 {
    text.chars().count() as f64 * font / 1.24 * 0.6
}

/// Draws `chart` as an SVG document.
fn render_svg(chart: &Chart) -> Result<String> {
    let placements = place_event_labels(chart);
    let rows = placements.iter().map(|p| p.row + 1).max().unwrap_or(0) as i32;
    let header_height = EVENT_ROWS_TOP + rows * EVENT_ROW_HEIGHT + 4;
    let (x_lo, x_hi) = chart.x_range();
    let (y_lo, y_hi) = chart.y_range();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        draw_header(&root, chart)?;
        let (_, body) = root.split_vertically(header_height);
        let mut builder = ChartBuilder::on(&body);
        builder
            .margin_left(MARGIN_LEFT)
            .margin_right(MARGIN_RIGHT)
            .margin_bottom(MARGIN_BOTTOM)
            .margin_top(4)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA);
        let x = x_lo..x_hi;
        if chart.log_y {
            let context = builder.build_cartesian_2d(x, (y_lo..y_hi).log_scale())?;
            draw_plot(context, &root, chart, &placements, header_height)?;
        } else {
            let context = builder.build_cartesian_2d(x, y_lo..y_hi)?;
            draw_plot(context, &root, chart, &placements, header_height)?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Title and subtitle on the left, the legend on the right of the title line.
fn draw_header(root: &DrawingArea<SVGBackend<'_>, Shift>, chart: &Chart) -> Result<()> {
    let top_left = Pos::new(HPos::Left, VPos::Top);
    let title = ("sans-serif", TITLE_FONT)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK)
        .pos(top_left);
    root.draw(&Text::new(
        chart.title.clone(),
        (MARGIN_LEFT + 4, TITLE_TOP),
        title,
    ))?;
    let subtitle = ("sans-serif", SUBTITLE_FONT)
        .into_font()
        .color(&SUBTITLE_COLOR)
        .pos(top_left);
    root.draw(&Text::new(
        chart.subtitle.clone(),
        (MARGIN_LEFT + 4, SUBTITLE_TOP),
        subtitle,
    ))?;

    // Legend: a short line and the label per series, right-aligned.
    const SWATCH: i32 = 26;
    const GAP: i32 = 18;
    let widths: Vec<i32> = chart
        .series
        .iter()
        .map(|s| SWATCH + 6 + estimated_text_width(s.label, SUBTITLE_FONT).ceil() as i32)
        .collect();
    let total: i32 = widths.iter().sum::<i32>() + GAP * (widths.len() as i32 - 1).max(0);
    let mut x = WIDTH as i32 - MARGIN_RIGHT - total;
    let y = TITLE_TOP + 12;
    for (series, width) in chart.series.iter().zip(&widths) {
        root.draw(&PathElement::new(
            vec![(x, y), (x + SWATCH, y)],
            series.color.stroke_width(3),
        ))?;
        let label = ("sans-serif", SUBTITLE_FONT)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(series.label, (x + SWATCH + 6, y), label))?;
        x += width + GAP;
    }
    Ok(())
}

/// Axes, grid, the series, the event markers (lines through the plot, labels in the
/// header band) and a note when there is nothing to plot.
fn draw_plot<Y>(
    mut context: ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, Y>>,
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &Chart,
    placements: &[LabelPlacement],
    header_height: i32,
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let x_tick = |v: &f64| axis_number(*v, false);
    let y_tick = |v: &f64| axis_number(*v, chart.y_ticks_in_thousands);
    context
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc(chart.y_desc.as_str())
        .axis_desc_style(("sans-serif", AXIS_DESC_FONT))
        .label_style(("sans-serif", TICK_FONT))
        .x_labels(12)
        .y_labels(8)
        .max_light_lines(1)
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(242, 242, 242))
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .draw()?;

    let (x_lo, x_hi) = chart.x_range();
    let (y_lo, y_hi) = chart.y_range();
    for (marker, placement) in chart.events.iter().zip(placements) {
        let line_style = ShapeStyle::from(&EVENT_COLOR).stroke_width(1);
        context.draw_series(DashedLineSeries::new(
            [(marker.t_secs, y_lo), (marker.t_secs, y_hi)],
            6,
            4,
            line_style,
        ))?;
        // Continue the line up into the header to the label's row.
        let (x, plot_top) = context.backend_coord(&(marker.t_secs, y_hi));
        let label_top = header_height - 4 - (placement.row as i32 + 1) * EVENT_ROW_HEIGHT;
        root.draw(&PathElement::new(
            vec![(x, label_top), (x, plot_top)],
            line_style,
        ))?;
        let (anchor, text_x) = if placement.right_of_line {
            (HPos::Left, x + 4)
        } else {
            (HPos::Right, x - 4)
        };
        let style = ("sans-serif", EVENT_FONT)
            .into_font()
            .color(&EVENT_TEXT_COLOR)
            .pos(Pos::new(anchor, VPos::Top));
        root.draw(&Text::new(
            marker.label.clone(),
            (text_x, label_top + 1),
            style,
        ))?;
    }

    let mut plotted_any = false;
    for series in &chart.series {
        let style = series.color.stroke_width(2);
        for segment in contiguous_segments(&chart.times, &series.values) {
            plotted_any = true;
            if let [only] = segment.as_slice() {
                context.draw_series(std::iter::once(Circle::new(*only, 3, style.filled())))?;
            } else {
                context.draw_series(LineSeries::new(segment, style))?;
            }
        }
    }

    if !plotted_any {
        let mid_x = (x_lo + x_hi) / 2.0;
        let (x, top) = context.backend_coord(&(mid_x, y_hi));
        let (_, bottom) = context.backend_coord(&(mid_x, y_lo));
        let style = ("sans-serif", SUBTITLE_FONT)
            .into_font()
            .color(&SUBTITLE_COLOR)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("no samples", (x, (top + bottom) / 2), style))?;
    }
    Ok(())
}

/// Runs of consecutive present values as (time, value) points.
fn contiguous_segments(times: &[f64], values: &[Option<f64>]) -> Vec<Vec<(f64, f64)>> {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    for (t, value) in times.iter().zip(values) {
        match value {
            Some(v) => current.push((*t, *v)),
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// A tick label: `12k`, `1.5k` (with `thousands`, else `12000`), `250`, `2.5`, `0.05`.
fn axis_number(value: f64, thousands: bool) -> String {
    let magnitude = value.abs();
    let text = if thousands && magnitude >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else if magnitude >= 10.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    };
    // Drop a useless fraction: 12.0k -> 12k, 2.50 -> 2.5.
    if text.contains('.') {
        let (number, suffix) = text
            .strip_suffix('k')
            .map_or((text.as_str(), ""), |n| (n, "k"));
        let number = number.trim_end_matches('0').trim_end_matches('.');
        format!("{number}{suffix}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<TimelineRow> {
        (1..=20)
            .map(|t| TimelineRow {
                t_secs: f64::from(t),
                completed_tps: if (8..11).contains(&t) { 0.0 } else { 9000.0 },
                committed_tps: 9100.0,
                p50_ms: (!(8..11).contains(&t)).then_some(4.0),
                p99_ms: Some(if t == 11 { 2500.0 } else { 15.0 }),
                views: vec![u64::from(t >= 11); 4],
                events: match t {
                    8 => vec!["kill r0".into()],
                    9 => vec!["partition {r0} | {r1,r2,r3}".into()],
                    15 => vec!["restart r0".into(), "heal".into()],
                    _ => vec![],
                },
            })
            .collect()
    }

    #[test]
    fn markers_sit_at_the_interval_start() {
        let rows = rows();
        let plottable = plottable_rows(&rows);
        let markers = event_markers(&plottable);
        let times: Vec<f64> = markers.iter().map(|m| m.t_secs).collect();
        assert_eq!(times, vec![7.0, 8.0, 14.0]);
        assert_eq!(markers[2].label, "restart r0; heal");
    }

    #[test]
    fn close_labels_stack_as_a_staircase() {
        let chart = throughput_chart("local", "", &rows());
        let rows: Vec<usize> = place_event_labels(&chart).iter().map(|p| p.row).collect();
        // "kill r0" at 7 s reaches past 8 s, so it sits above the partition label; the
        // last label is far away and stays on the bottom row.
        assert_eq!(rows, vec![1, 0, 0]);
    }

    #[test]
    fn latency_spike_switches_to_log_scale() {
        let chart = latency_chart("local", "", &rows());
        assert!(chart.log_y);
        let calm: Vec<TimelineRow> = rows()
            .into_iter()
            .map(|r| TimelineRow {
                p99_ms: Some(15.0),
                ..r
            })
            .collect();
        assert!(!latency_chart("local", "", &calm).log_y);
    }

    #[test]
    fn gaps_split_lines() {
        let times = [1.0, 2.0, 3.0, 4.0, 5.0];
        let values = [Some(1.0), None, Some(3.0), Some(4.0), None];
        assert_eq!(
            contiguous_segments(&times, &values),
            vec![vec![(1.0, 1.0)], vec![(3.0, 3.0), (4.0, 4.0)]]
        );
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(axis_number(12000.0, true), "12k");
        assert_eq!(axis_number(1500.0, true), "1.5k");
        assert_eq!(axis_number(1500.0, false), "1500");
        assert_eq!(axis_number(250.0, true), "250");
        assert_eq!(axis_number(2.5, true), "2.5");
        assert_eq!(axis_number(0.05, false), "0.05");
        assert_eq!(axis_number(0.0, false), "0");
    }

    #[test]
    fn odd_values_still_render() {
        let odd = vec![
            TimelineRow {
                t_secs: f64::NAN,
                events: vec!["lost".into()],
                ..TimelineRow::default()
            },
            TimelineRow {
                t_secs: 1.0,
                completed_tps: f64::INFINITY,
                committed_tps: f64::NAN,
                p50_ms: Some(f64::NAN),
                p99_ms: Some(-1.0),
                ..TimelineRow::default()
            },
        ];
        let extreme = vec![
            TimelineRow {
                t_secs: -5.0,
                completed_tps: f64::MAX,
                committed_tps: 1e-300,
                p50_ms: Some(1e-300),
                p99_ms: Some(f64::MAX),
                events: vec!["x".repeat(500)],
                ..TimelineRow::default()
            },
            TimelineRow {
                t_secs: 1e15,
                events: (0..50).map(|i| format!("event {i}")).collect(),
                ..TimelineRow::default()
            },
            TimelineRow {
                t_secs: 1e12,
                completed_tps: 1e12,
                ..TimelineRow::default()
            },
            TimelineRow {
                t_secs: 3.0,
                p50_ms: Some(0.002),
                p99_ms: Some(1e11),
                ..TimelineRow::default()
            },
        ];
        let crowded: Vec<TimelineRow> = (0..400)
            .map(|i| TimelineRow {
                t_secs: f64::from(i) * 0.05,
                events: vec![format!("fault number {i}")],
                ..TimelineRow::default()
            })
            .collect();
        assert!(latency_chart("extreme", "", &extreme).log_y);
        for chart in [
            throughput_chart("odd", "", &odd),
            latency_chart("odd", "", &odd),
            throughput_chart("empty", "", &[]),
            throughput_chart("extreme", "", &extreme),
            latency_chart("extreme", "", &extreme),
            latency_chart("crowded", "", &crowded),
        ] {
            let svg = render_svg(&chart).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
    }
}
