//! Apply progress for people: one line when a step starts, one when it ends, Terraform's words.
//! Lines, not redraws, so logs in CI read the same as a terminal.

use std::time::Duration;

use crate::apply::Progress;
use crate::cloud::CloudError;
use crate::plan::{Action, Step};

/// Prints progress lines to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lines;

fn verbs(a: Action) -> (&'static str, &'static str) {
    match a {
        Action::Create => ("Creating...", "Creation complete"),
        Action::Update => ("Modifying...", "Modifications complete"),
        Action::Replace => ("Replacing...", "Replacement complete"),
        Action::Delete => ("Destroying...", "Destruction complete"),
        Action::NoOp => ("Checking...", "Unchanged"),
    }
}

impl Progress for Lines {
    fn started(&self, step: &Step) {
        eprintln!("{}: {}", step.address, verbs(step.action).0);
        tracing::info!(address = %step.address, action = ?step.action, "step started");
    }

    fn finished(&self, step: &Step, result: &Result<(), CloudError>, took: Duration) {
        match result {
            Ok(_) => eprintln!(
                "{}: {} after {:.1}s",
                step.address,
                verbs(step.action).1,
                took.as_secs_f64()
            ),
            Err(e) => eprintln!(
                "{}: failed after {:.1}s: {e}",
                step.address,
                took.as_secs_f64()
            ),
        }
        tracing::info!(address = %step.address, ok = result.is_ok(), ms = took.as_millis() as u64, "step finished");
    }
}
