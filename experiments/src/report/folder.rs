//! The results folder of a run: choosing its name, writing every file into it, and
//! redrawing its plots from the files alone.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;

use super::model::{RunSummary, TimelineRow};
use super::utc::UtcDateTime;
use super::{LATENCY_HGRM, SUMMARY_JSON, TIMELINE_CSV};
use super::{hgrm, plot, summary, timeline};

/// Writes a run's results into `dir` (created if missing): `summary.json`,
/// `timeline.csv`, `latency.hgrm` (from `latency_micros`, a histogram of microseconds),
/// `throughput.svg` and `latency.svg`. Existing files of those names are replaced.
pub fn write_results(
    dir: &Path,
    summary: &RunSummary,
    timeline: &[TimelineRow],
    latency_micros: &Histogram<u64>,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating results folder {}", dir.display()))?;
    summary::write_summary(&dir.join(SUMMARY_JSON), summary)?;
    timeline::write_timeline_csv(&dir.join(TIMELINE_CSV), timeline, summary.replicas.len())?;
    hgrm::write_hgrm(&dir.join(LATENCY_HGRM), latency_micros)?;
    plot::write_plots(dir, summary, timeline)
}

/// Redraws `throughput.svg` and `latency.svg` in a results folder from its
/// `summary.json` and `timeline.csv`, so plots can be changed without rerunning.
pub fn rewrite_plots(dir: &Path) -> Result<()> {
    let summary = summary::read_summary(&dir.join(SUMMARY_JSON))?;
    let timeline = timeline::read_timeline_csv(&dir.join(TIMELINE_CSV))?;
    plot::write_plots(dir, &summary, &timeline)
}

/// A fresh folder for a run: `base/<name>-<YYYYmmdd-HHMMSS>` in UTC, with `-2`, `-3`…
/// appended if that exists. The folder is created here (empty) so the name is claimed
/// even against another run starting in the same second; if it cannot be created the
/// path is still returned, and writing into it reports the error.
///
/// Characters of `name` other than letters, digits, `.`, `_` and `-` become `-`.
pub fn results_dir(base: &Path, name: &str) -> PathBuf {
    results_dir_at(base, name, SystemTime::now())
}

fn results_dir_at(base: &Path, name: &str, time: SystemTime) -> PathBuf {
    let stem = format!(
        "{}-{}",
        folder_safe(name),
        UtcDateTime::from_system_time(time).compact()
    );
    let _ = std::fs::create_dir_all(base);
    let mut suffix = 1u32;
    loop {
        let candidate = if suffix == 1 {
            base.join(&stem)
        } else {
            base.join(format!("{stem}-{suffix}"))
        };
        match std::fs::create_dir(&candidate) {
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && suffix < 10_000 => {
                suffix += 1;
            }
            _ => return candidate,
        }
    }
}

/// `name` with anything unsafe in a folder name replaced by `-` (`run` if empty).
fn folder_safe(name: &str) -> String {
    let safe: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        "run".to_string()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::sample_run::{sample_histogram, sample_summary, sample_timeline};
    use crate::report::{LATENCY_SVG, THROUGHPUT_SVG};

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// The contents of an SVG's `<text>` elements, after checking that the document is
    /// one `<svg>` element with balanced `<text>` tags.
    fn svg_texts(svg: &str) -> Vec<String> {
        assert!(svg.starts_with("<svg "), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        svg.split("<text")
            .skip(1)
            .map(|element| {
                let content = &element[element.find('>').unwrap() + 1..];
                content[..content.find("</text>").unwrap()]
                    .trim()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn writes_every_file_and_each_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("local-20261125-104250");
        let summary = sample_summary();
        let histogram = sample_histogram();
        write_results(&out, &summary, &sample_timeline(), &histogram).unwrap();

        let back: RunSummary = serde_json::from_str(&read(&out.join(SUMMARY_JSON))).unwrap();
        assert_eq!(back, summary);

        let csv = read(&out.join(TIMELINE_CSV));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "t_secs,completed_tps,committed_tps,p50_ms,p99_ms,view_r0,view_r1,view_r2,view_r3,events"
        );
        assert_eq!(lines.len(), 1 + 20);
        assert!(
            lines[12].ends_with(",\"partition {r0} | {r1,r2,r3}\""),
            "{}",
            lines[12]
        );
        assert_eq!(
            timeline::parse_timeline_csv(&csv).unwrap()[11].events,
            vec!["partition {r0} | {r1,r2,r3}"]
        );

        let hgrm = read(&out.join(LATENCY_HGRM));
        let data: Vec<&str> = hgrm
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .collect();
        let last: Vec<&str> = data.last().unwrap().split_whitespace().collect();
        assert_eq!(last.len(), 3, "the 100% line has no 1/(1-Percentile)");
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[0], format!("{:.3}", histogram.max() as f64 / 1000.0));
        assert_eq!(last[2], histogram.len().to_string());
        let footer_number = |prefix: &str| -> f64 {
            let line = hgrm.lines().find(|l| l.starts_with(prefix)).unwrap();
            line[prefix.len()..]
                .split(',')
                .next()
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert!((footer_number("#[Mean    =") - histogram.mean() / 1000.0).abs() < 0.0005);
        assert_eq!(
            footer_number("#[Max     ="),
            histogram.max() as f64 / 1000.0
        );

        let throughput = svg_texts(&read(&out.join(THROUGHPUT_SVG)));
        let latency = svg_texts(&read(&out.join(LATENCY_SVG)));
        for texts in [&throughput, &latency] {
            for expected in [
                "time since start (s)",
                "kill r0",
                "partition {r0} | {r1,r2,r3}",
                "4 replicas, block-stm executor, dex workload, offered 20,000 tx/s, \
                 2026-11-25T10:42:50Z, rev 3f2a9c1",
            ] {
                assert!(
                    texts.iter().any(|t| t == expected),
                    "{expected:?} in {texts:?}"
                );
            }
        }
        for expected in [
            "local: throughput",
            "throughput (tx/s)",
            "completed (end-to-end)",
            "committed (consensus)",
            "12k",
        ] {
            assert!(
                throughput.iter().any(|t| t == expected),
                "{expected:?} in {throughput:?}"
            );
        }
        for expected in [
            "local: latency",
            "latency (ms, log scale)",
            "p50",
            "p99",
            "100",
        ] {
            assert!(
                latency.iter().any(|t| t == expected),
                "{expected:?} in {latency:?}"
            );
        }
    }

    #[test]
    fn empty_timeline_and_histogram_still_write_valid_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut summary = sample_summary();
        summary.duration_secs = 0.0;
        summary.throughput.end_to_end_tps = f64::NAN;
        summary.throughput.consensus_tps = f64::INFINITY;
        summary.replicas.truncate(2);
        let empty = Histogram::<u64>::new(3).unwrap();
        write_results(dir.path(), &summary, &[], &empty).unwrap();

        let back: RunSummary = serde_json::from_str(&read(&dir.path().join(SUMMARY_JSON))).unwrap();
        assert!(back.throughput.end_to_end_tps.is_nan() && back.throughput.consensus_tps.is_nan());
        assert_eq!(
            read(&dir.path().join(TIMELINE_CSV)),
            "t_secs,completed_tps,committed_tps,p50_ms,p99_ms,view_r0,view_r1,events\n"
        );
        assert!(read(&dir.path().join(LATENCY_HGRM)).contains("Total count    =            0]"));
        for file in [THROUGHPUT_SVG, LATENCY_SVG] {
            let svg = read(&dir.path().join(file));
            assert!(
                svg.starts_with("<svg") && svg.contains("no samples"),
                "{file}"
            );
        }
    }

    #[test]
    fn rewrite_plots_redraws_from_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        write_results(
            dir.path(),
            &sample_summary(),
            &sample_timeline(),
            &sample_histogram(),
        )
        .unwrap();
        for file in [THROUGHPUT_SVG, LATENCY_SVG] {
            std::fs::remove_file(dir.path().join(file)).unwrap();
        }
        // Edit the run name in summary.json: the redrawn titles must follow it.
        let summary_path = dir.path().join(SUMMARY_JSON);
        let edited = read(&summary_path).replace("\"name\": \"local\"", "\"name\": \"renamed\"");
        std::fs::write(&summary_path, edited).unwrap();

        rewrite_plots(dir.path()).unwrap();
        for file in [THROUGHPUT_SVG, LATENCY_SVG] {
            let texts = svg_texts(&read(&dir.path().join(file)));
            assert!(
                texts.iter().any(|t| t.starts_with("renamed: ")),
                "{file}: {texts:?}"
            );
            assert!(texts.iter().any(|t| t == "kill r0"), "{file}: {texts:?}");
        }

        std::fs::remove_file(dir.path().join(TIMELINE_CSV)).unwrap();
        let err = rewrite_plots(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("timeline.csv"), "{err:#}");
    }

    #[test]
    fn results_dirs_are_named_by_utc_time_and_unique() {
        let base = tempfile::tempdir().unwrap();
        let base = base.path().join("results");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let first = results_dir_at(&base, "local", time);
        let second = results_dir_at(&base, "local", time);
        let third = results_dir_at(&base, "local", time);
        assert_eq!(first, base.join("local-20231114-221320"));
        assert_eq!(second, base.join("local-20231114-221320-2"));
        assert_eq!(third, base.join("local-20231114-221320-3"));
        assert!(first.is_dir() && second.is_dir() && third.is_dir());
        assert_eq!(
            results_dir_at(&base, "crash / restart", time),
            base.join("crash---restart-20231114-221320")
        );
        assert_eq!(folder_safe(".."), "run");
    }
}
