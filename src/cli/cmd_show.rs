//! `scar show plan.json`: prints a saved plan in any format, with no AWS call.

use std::path::Path;
use std::process::ExitCode;

use super::PlanFormat;
use super::cmd_plan::{error_chain, print};
use super::output::Output;

pub(super) fn run(path: &Path, format: PlanFormat, out: &Output) -> std::io::Result<ExitCode> {
    match crate::plan::file::load(path) {
        Ok(file) => {
            print(&file.plan, format, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.error(&error_chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}
