//! `timeline.csv`: one line per interval, RFC 4180 CSV (comma separated, fields with
//! commas or quotes quoted, quotes doubled), written and read back.
//!
//! Columns: `t_secs,completed_tps,committed_tps,p50_ms,p99_ms,view_r0,…,view_r{n-1},events`.
//! Numbers use a fixed number of decimals (3 for seconds and milliseconds, 1 for tx/s);
//! a missing or non-finite figure is an empty field. `events` joins the interval's
//! events with `;`.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

use super::model::TimelineRow;

/// The columns before the per-replica views.
const LEADING_COLUMNS: [&str; 5] = [
    "t_secs",
    "completed_tps",
    "committed_tps",
    "p50_ms",
    "p99_ms",
];
/// The last column.
const EVENTS_COLUMN: &str = "events";
/// Separator between the events of one interval.
const EVENT_SEPARATOR: char = ';';

/// Writes `rows` to `path` with one view column per replica: `replicas` columns, or
/// more if a row reports more views.
pub(crate) fn write_timeline_csv(path: &Path, rows: &[TimelineRow], replicas: usize) -> Result<()> {
    std::fs::write(path, timeline_csv(rows, replicas))
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a `timeline.csv` written by [`write_timeline_csv`].
pub(crate) fn read_timeline_csv(path: &Path) -> Result<Vec<TimelineRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_timeline_csv(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The CSV text for `rows` (see [`write_timeline_csv`]).
pub(crate) fn timeline_csv(rows: &[TimelineRow], replicas: usize) -> String {
    let view_columns = rows
        .iter()
        .map(|row| row.views.len())
        .fold(replicas, usize::max);
    let mut out = String::new();
    let mut header: Vec<String> = LEADING_COLUMNS.iter().map(|c| c.to_string()).collect();
    header.extend((0..view_columns).map(|i| format!("view_r{i}")));
    header.push(EVENTS_COLUMN.to_string());
    out.push_str(&header.join(","));
    out.push('\n');

    for row in rows {
        let mut fields = vec![
            decimal(row.t_secs, 3),
            decimal(row.completed_tps, 1),
            decimal(row.committed_tps, 1),
            row.p50_ms.map_or_else(String::new, |v| decimal(v, 3)),
            row.p99_ms.map_or_else(String::new, |v| decimal(v, 3)),
        ];
        fields.extend(
            (0..view_columns).map(|i| row.views.get(i).map_or_else(String::new, u64::to_string)),
        );
        let events: Vec<String> = row.events.iter().map(|e| one_line_event(e)).collect();
        fields.push(events.join(&EVENT_SEPARATOR.to_string()));
        let quoted: Vec<Cow<'_, str>> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

/// Parses the CSV text of a timeline (see [`write_timeline_csv`]).
pub(crate) fn parse_timeline_csv(text: &str) -> Result<Vec<TimelineRow>> {
    let mut records = csv_records(text)?.into_iter();
    let Some(header) = records.next() else {
        bail!("empty file: no header");
    };
    let view_columns = header.len().saturating_sub(LEADING_COLUMNS.len() + 1);
    let expected: Vec<String> = LEADING_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain((0..view_columns).map(|i| format!("view_r{i}")))
        .chain([EVENTS_COLUMN.to_string()])
        .collect();
    ensure!(
        header == expected,
        "unexpected header {:?}, expected {:?}",
        header.join(","),
        expected.join(",")
    );

    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let line = index + 2;
        ensure!(
            record.len() == header.len(),
            "line {line}: {} fields, the header has {}",
            record.len(),
            header.len()
        );
        let number = |column: usize| -> Result<Option<f64>> {
            let field = record[column].trim();
            if field.is_empty() {
                return Ok(None);
            }
            field.parse::<f64>().map(Some).with_context(|| {
                format!(
                    "line {line}, column {}: not a number: {field:?}",
                    header[column]
                )
            })
        };
        let mut views = Vec::with_capacity(view_columns);
        let view_fields = &record[LEADING_COLUMNS.len()..LEADING_COLUMNS.len() + view_columns];
        // Rows with fewer views than columns end in empty view fields.
        let filled = view_fields
            .iter()
            .rposition(|f| !f.trim().is_empty())
            .map_or(0, |i| i + 1);
        for (i, field) in view_fields[..filled].iter().enumerate() {
            let view = field
                .trim()
                .parse::<u64>()
                .with_context(|| format!("line {line}, column view_r{i}: not a view: {field:?}"))?;
            views.push(view);
        }
        let events = record[record.len() - 1]
            .split(EVENT_SEPARATOR)
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect();
        rows.push(TimelineRow {
            t_secs: number(0)?.unwrap_or(f64::NAN),
            completed_tps: number(1)?.unwrap_or(f64::NAN),
            committed_tps: number(2)?.unwrap_or(f64::NAN),
            p50_ms: number(3)?,
            p99_ms: number(4)?,
            views,
            events,
        });
    }
    Ok(rows)
}

/// `value` with `places` decimals, or an empty field if it is NaN or infinite.
fn decimal(value: f64, places: usize) -> String {
    if value.is_finite() {
        format!("{value:.places$}")
    } else {
        String::new()
    }
}

/// An event as one line without the separator, so the events field splits back.
fn one_line_event(event: &str) -> String {
    event
        .trim()
        .replace(EVENT_SEPARATOR, ",")
        .replace(['\r', '\n'], " ")
}

/// `field` quoted if it holds a comma, quote or line break (RFC 4180).
fn csv_field(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// Splits RFC 4180 CSV text into records of fields. Accepts LF or CRLF line ends and
/// quoted fields spanning lines; blank lines are skipped.
fn csv_records(text: &str) -> Result<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut field_was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !field_was_quoted => {
                in_quotes = true;
                field_was_quoted = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                field_was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                field_was_quoted = false;
                let is_blank = record.len() == 1 && record[0].is_empty();
                if !is_blank {
                    records.push(std::mem::take(&mut record));
                } else {
                    record.clear();
                }
            }
            _ => field.push(c),
        }
    }
    ensure!(
        !in_quotes,
        "a quoted field is not closed at the end of the file"
    );
    if !field.is_empty() || field_was_quoted || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, events: &[&str]) -> TimelineRow {
        TimelineRow {
            t_secs: t,
            completed_tps: 1000.0 * t,
            committed_tps: 1100.0 * t,
            p50_ms: Some(4.25),
            p99_ms: Some(12.5),
            views: vec![0, 0, 1, 1],
            events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn round_trips_with_quoted_events() {
        let rows = vec![
            row(1.0, &[]),
            row(2.0, &["partition {r0} | {r1,r2,r3}", "kill \"r0\""]),
            TimelineRow {
                p50_ms: None,
                p99_ms: None,
                completed_tps: f64::NAN,
                views: vec![2],
                ..row(3.0, &["heal"])
            },
        ];
        let text = timeline_csv(&rows, 4);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "t_secs,completed_tps,committed_tps,p50_ms,p99_ms,view_r0,view_r1,view_r2,view_r3,events"
        );
        assert_eq!(lines[1], "1.000,1000.0,1100.0,4.250,12.500,0,0,1,1,");
        assert_eq!(
            lines[2],
            r#"2.000,2000.0,2200.0,4.250,12.500,0,0,1,1,"partition {r0} | {r1,r2,r3};kill ""r0""""#
        );
        assert_eq!(lines[3], "3.000,,3300.0,,,2,,,,heal");

        let back = parse_timeline_csv(&text).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], rows[0]);
        assert_eq!(back[1], rows[1]);
        assert!(back[2].completed_tps.is_nan());
        assert_eq!(back[2].views, vec![2]);
        assert_eq!(back[2].p50_ms, None);
        assert_eq!(back[2].events, vec!["heal"]);
    }

    #[test]
    fn separators_inside_an_event_are_neutralised() {
        let text = timeline_csv(&[row(1.0, &["delay r0->r1; 50ms\nthen heal"])], 0);
        let back = parse_timeline_csv(&text).unwrap();
        assert_eq!(back[0].events, vec!["delay r0->r1, 50ms then heal"]);
        // More views than the declared replica count widen the header.
        assert!(text.starts_with("t_secs,completed_tps,committed_tps,p50_ms,p99_ms,view_r0,view_r1,view_r2,view_r3,events\n"));
    }

    #[test]
    fn empty_timeline_is_a_header_only() {
        let text = timeline_csv(&[], 2);
        assert_eq!(
            text,
            "t_secs,completed_tps,committed_tps,p50_ms,p99_ms,view_r0,view_r1,events\n"
        );
        assert!(parse_timeline_csv(&text).unwrap().is_empty());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(parse_timeline_csv("").is_err());
        assert!(parse_timeline_csv("a,b\n").is_err());
        let header = "t_secs,completed_tps,committed_tps,p50_ms,p99_ms,events\n";
        assert!(parse_timeline_csv(&format!("{header}1,2,3\n")).is_err());
        assert!(parse_timeline_csv(&format!("{header}1,x,3,4,5,\n")).is_err());
        assert!(parse_timeline_csv(&format!("{header}1,2,3,4,5,\"open\n")).is_err());
        // CRLF line ends are accepted.
        let crlf =
            parse_timeline_csv(&format!("{header}1,2,3,4,5,kill r0\n").replace('\n', "\r\n"))
                .unwrap();
        assert_eq!(crlf[0].events, vec!["kill r0"]);
    }
}
