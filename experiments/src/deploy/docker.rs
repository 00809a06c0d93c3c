//! Finding the Docker engine and a Compose tool: `docker compose` (the plugin) is
//! preferred, the standalone `docker-compose` is the fallback. Tests and commands ask
//! here first and say plainly what is missing.

use std::process::{Command, Stdio};

use anyhow::{Result, bail};

/// Why Docker cannot be used here, as a sentence for a skip message; `None` when the
/// `docker` client runs and its daemon answers.
pub fn docker_unavailable() -> Option<String> {
    match Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Some(format!("the docker command cannot run: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "the docker daemon is unreachable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// The Compose tool: the program and the arguments that come before Compose's own
/// (`docker compose …` or `docker-compose …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposeTool {
    /// The program to run.
    pub program: String,
    /// Arguments before Compose's own (`["compose"]` for the plugin).
    pub prefix: Vec<String>,
}

impl ComposeTool {
    /// `docker compose` if the plugin answers `version`, else `docker-compose` if it
    /// does; an error naming both when neither runs.
    pub fn find() -> Result<ComposeTool> {
        let candidates = [
            ComposeTool {
                program: "docker".into(),
                prefix: vec!["compose".into()],
            },
            ComposeTool {
                program: "docker-compose".into(),
                prefix: Vec::new(),
            },
        ];
        for tool in candidates {
            let ok = tool
                .command()
                .arg("version")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(tool);
            }
        }
        bail!("neither `docker compose` nor `docker-compose` runs on this machine")
    }

    /// A command running this tool, ready for Compose's own arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix);
        cmd
    }

    /// How the tool is typed, e.g. `docker compose`.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.prefix.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
