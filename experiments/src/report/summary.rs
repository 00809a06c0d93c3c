//! `summary.json`: writing and reading it, and the provenance fields a runner stamps on
//! a summary (start time, git revision).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::model::RunSummary;
use super::utc::UtcDateTime;

/// The current time in RFC 3339 UTC, e.g. `2026-11-25T10:42:50Z`.
pub fn now_rfc3339() -> String {
    UtcDateTime::from_system_time(SystemTime::now()).rfc3339()
}

/// `git rev-parse --short HEAD` of the source tree this binary was built from, with
/// `-dirty` appended when tracked files have uncommitted changes; `None` when git or
/// the tree is not available (a binary copied to another machine).
///
/// The tree is found from the crate's build-time directory rather than the working
/// directory, so the answer does not depend on where `tandem` is started from.
pub fn git_revision() -> Option<String> {
    git_revision_of(Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn git_revision_of(tree: &Path) -> Option<String> {
    let head = git_output(tree, &["rev-parse", "--short", "HEAD"])?;
    let head = head.trim();
    if head.is_empty() {
        return None;
    }
    // Untracked files (results, scratch) do not make a build dirty.
    let dirty = git_output(tree, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.trim().is_empty());
    Some(if dirty {
        format!("{head}-dirty")
    } else {
        head.to_string()
    })
}

/// Stdout of a successful `git -C tree args…`, or `None`.
fn git_output(tree: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(args)
        // Others may be running git in the same repository: never take the index lock.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// Writes `summary` as pretty JSON (with a final newline) to `path`.
pub(crate) fn write_summary(path: &Path, summary: &RunSummary) -> Result<()> {
    let mut json = serde_json::to_string_pretty(summary).context("encoding the run summary")?;
    json.push('\n');
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// Reads a `summary.json` written by [`write_summary`].
pub(crate) fn read_summary(path: &Path) -> Result<RunSummary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_rfc3339_utc() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-25T10:42:50Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }

    #[test]
    fn git_revision_is_none_outside_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_revision_of(dir.path()), None);
    }

    #[test]
    fn git_revision_is_short_hex_with_optional_dirty_suffix() {
        // The build tree is a git checkout in development; skip quietly if not.
        if let Some(revision) = git_revision() {
            let hex = revision.strip_suffix("-dirty").unwrap_or(&revision);
            assert!(hex.len() >= 4, "{revision}");
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{revision}");
        }
    }
}
