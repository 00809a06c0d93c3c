//! `tandem image`: builds a container image holding the `tandem` binary (this one, or
//! `--binary`), `FROM scratch` plus the shared libraries `ldd` names; nothing is pulled.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use tandem_experiments::deploy::image::{DEFAULT_TAG, build_image};

/// Arguments of `tandem image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// The image tag.
    #[arg(long, default_value = DEFAULT_TAG)]
    tag: String,
    /// The binary to put in the image (default: the running `tandem`; use a release
    /// build for measurements).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Keep the build context (Dockerfile and rootfs/) in this folder, which must be
    /// empty or absent; by default it is written to a temporary folder and removed.
    #[arg(long)]
    context: Option<PathBuf>,
}

/// Runs `tandem image`.
pub fn run(args: ImageArgs) -> Result<ExitCode> {
    let binary = match args.binary {
        Some(path) => path,
        None => std::env::current_exe().context("cannot find the running tandem binary")?,
    };
    build_image(&binary, &args.tag, args.context.as_deref())?;
    println!("built image {} from {}", args.tag, binary.display());
    Ok(ExitCode::SUCCESS)
}
