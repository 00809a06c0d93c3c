//! The progress display of a run: a bar with elapsed time and client throughput on a
//! terminal, a line every five seconds otherwise (stderr either way).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

use crate::load::Progress;

/// A progress bar on a terminal; a line every five seconds otherwise.
pub(crate) async fn show(progress: Arc<Progress>, start: Instant, duration: Duration) {
    let tty = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(duration.as_millis() as u64);
    if tty {
        bar.set_style(ProgressStyle::with_template("{bar:30} {msg}").expect("valid template"));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last = (Instant::now(), 0u64);
    let mut next_line = Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        let done = progress.completed.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        if now.duration_since(last.0) >= Duration::from_secs(1) {
            last = (now, done);
        }
        let msg = format!(
            "{:>5.1}/{:.0} s  {:>8.0} tx/s  {:>10} committed at clients",
            elapsed.as_secs_f64(),
            duration.as_secs_f64(),
            rate,
            done
        );
        if tty {
            bar.set_position(elapsed.as_millis().min(duration.as_millis()) as u64);
            bar.set_message(msg);
        } else if elapsed >= next_line {
            eprintln!("{msg}");
            next_line += Duration::from_secs(5);
        }
    }
}
