//! `scar completions SHELL`: prints a completion script.

use clap::CommandFactory;

use super::exit::{Done, Outcome};

/// The arguments of `scar completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

pub(super) fn run(args: &CompletionsArgs) -> Outcome {
    let shell = args.shell;
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "scar", &mut std::io::stdout());
    Ok(Done::Success)
}
