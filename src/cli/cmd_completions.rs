//! `scar completions SHELL`: prints a completion script.

use std::process::ExitCode;

use clap::CommandFactory;

pub(super) fn run(shell: clap_complete::Shell) -> std::io::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "scar", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
