//! The last resort when the events API cannot be followed: run the Vercel CLI
//! (`vercel inspect <id> --logs`, command configurable) and take its output line by line.

use std::future::Future;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum FallbackError {
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{program}` exited with {status}: {stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("reading the output of `{program}` failed: {source}")]
    Read {
        program: String,
        source: std::io::Error,
    },
}

/// How to run the CLI fallback.
#[derive(Debug, Clone)]
pub struct CliFallback {
    program: String,
    leading_args: Vec<String>,
    token: Option<Secret>,
    team: Option<String>,
}

impl CliFallback {
    /// `command` is the program and any leading arguments, e.g. `vercel` or `npx vercel`.
    pub fn new(command: &str, token: Option<Secret>, team: Option<String>) -> Option<Self> {
        let mut words = command.split_whitespace().map(str::to_owned);
        let program = words.next()?;
        Some(CliFallback {
            program,
            leading_args: words.collect(),
            token,
            team,
        })
    }

    fn args(&self, vercel_id: &str) -> Vec<String> {
        let mut args = self.leading_args.clone();
        args.extend([
            "inspect".to_owned(),
            vercel_id.to_owned(),
            "--logs".to_owned(),
        ]);
        if let Some(team) = &self.team {
            args.extend(["--scope".to_owned(), team.clone()]);
        }
        args
    }

    /// The command line, for messages (the token travels in the environment, never here).
    pub fn describe(&self, vercel_id: &str) -> String {
        let mut words = vec![self.program.clone()];
        words.extend(self.args(vercel_id));
        words.join(" ")
    }

    /// Runs the CLI and hands every line of its output to `emit`.
    pub async fn run<F, Fut>(&self, vercel_id: &str, mut emit: F) -> Result<(), FallbackError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut command = Command::new(&self.program);
        command
            .args(self.args(vercel_id))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            command.env("VERCEL_TOKEN", token.expose());
        }
        let mut child = command.spawn().map_err(|source| FallbackError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let read_error = |source| FallbackError::Read {
            program: self.program.clone(),
            source,
        };
        if let Some(stdout) = child.stdout.take() {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(read_error)?
                    == 0
                {
                    break;
                }
                let text = String::from_utf8_lossy(&line);
                emit(text.trim_end_matches(['\n', '\r']).to_owned()).await;
            }
        }
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let mut bytes = Vec::new();
            let _ = err.read_to_end(&mut bytes).await;
            stderr = String::from_utf8_lossy(&bytes).trim().to_owned();
        }
        let status = child.wait().await.map_err(read_error)?;
        if status.success() {
            Ok(())
        } else {
            let last = stderr
                .lines()
                .last()
                .unwrap_or("no error output")
                .to_owned();
            Err(FallbackError::Failed {
                program: self.program.clone(),
                status,
                stderr: crate::log::redact::global().redact(&last).into_owned(),
            })
        }
    }
}
