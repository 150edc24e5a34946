//! How a command ends, and the one place that turns it into the process's exit code
//! (docs/cli.md): 0 success, 1 any failure (invalid input, usage error, refused or failed
//! command), 2 for `scar plan --detailed-exitcode` with changes present.

use std::process::ExitCode;

use super::output::Output;

/// A command that finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    /// It did what was asked.
    Success,
    /// A plan with changes, under `--detailed-exitcode`.
    Changes,
}

/// A command that did not.
#[derive(Debug)]
pub(super) enum Failure {
    /// The reason is printed already (diagnostics, a refusal, a failed step).
    Reported,
    /// Another run holds the stack's lock (printed already): `watch` counts these.
    LockHeld,
    /// A reason still to print.
    Message(String),
    /// Writing to stdout or a local file failed; a closed pipe (`scar plan | head`) is not a
    /// failure of the command.
    Io(std::io::Error),
    /// The arguments did not parse (or asked for help or the version, which clap prints).
    Usage(clap::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

/// What every command returns.
pub(super) type Outcome = Result<Done, Failure>;

/// Success when `ok`, else a failure whose reason is printed already.
pub(super) fn success_if(ok: bool) -> Outcome {
    if ok {
        Ok(Done::Success)
    } else {
        Err(Failure::Reported)
    }
}

/// The exit code of `outcome`, printing the reason of a failure not yet printed.
pub(super) fn code(outcome: Outcome, out: &Output) -> ExitCode {
    match outcome {
        Ok(Done::Success) => ExitCode::SUCCESS,
        Ok(Done::Changes) => ExitCode::from(2),
        Err(Failure::Reported | Failure::LockHeld) => ExitCode::from(1),
        Err(Failure::Message(m)) => {
            out.error(&m);
            ExitCode::from(1)
        }
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(e)) => {
            out.error(&e.to_string());
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            // Help and version go to stdout and are no error; usage errors exit 1, not clap's
            // customary 2, which `--detailed-exitcode` gives its own meaning.
            let failed = e.use_stderr();
            let _ = e.print();
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
