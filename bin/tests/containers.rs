//! Tests across containers: the image of the test's own debug `tandem` binary, and (in
//! later tests) clusters of replica containers on a private Docker network. Every test
//! skips with a message when Docker is missing or its daemon unreachable; images and
//! containers are removed on every path by drop guards.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use tandem_experiments::deploy::docker::docker_unavailable;

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

/// Runs `docker ARGS`; the output whatever the status.
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker runs")
}

/// True (after printing why) when Docker cannot be used here.
fn skip_without_docker(test: &str) -> bool {
    match docker_unavailable() {
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            true
        }
        None => false,
    }
}

/// A name unique to this test process and call, for images, networks and containers.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An image built from the test's own debug binary by `tandem image`, removed on drop.
struct TestImage {
    tag: String,
}

impl TestImage {
    fn build() -> TestImage {
        let tag = format!("{}:test", unique("tandem-ci"));
        let out = tandem()
            .args([
                "image",
                "--tag",
                &tag,
                "--binary",
                env!("CARGO_BIN_EXE_tandem"),
            ])
            .output()
            .expect("tandem image runs");
        let image = TestImage { tag };
        assert!(
            out.status.success(),
            "tandem image failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        image
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        docker(&["image", "rm", "--force", &self.tag]);
    }
}

#[test]
fn the_image_runs_tandem_from_scratch() {
    if skip_without_docker("the_image_runs_tandem_from_scratch") {
        return;
    }
    let image = TestImage::build();
    let out = docker(&["run", "--rm", &image.tag, "--version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("tandem "),
        "tandem --version in the image: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // FROM scratch: the binary, its libraries and the loader, nothing else (no shell).
    let shell = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &image.tag,
        "-c",
        "true",
    ]);
    assert!(!shell.status.success(), "the image has a shell");
    let size: u64 = String::from_utf8_lossy(
        &docker(&["image", "inspect", "--format", "{{.Size}}", &image.tag]).stdout,
    )
    .trim()
    .parse()
    .expect("image size");
    let binary = std::fs::metadata(Path::new(env!("CARGO_BIN_EXE_tandem")))
        .unwrap()
        .len();
    assert!(
        size < binary + (16 << 20),
        "image {size} bytes for a {binary}-byte binary"
    );
}
