//! `scar show plan.json`: prints a saved plan in any format, with no AWS call. A file whose
//! listed changes are not what its attributes would write (an edited file) is refused: what
//! `show` renders is what `apply` would run, and `apply` runs it only if the manifests and
//! AWS still give exactly this plan.

use std::path::Path;
use std::process::ExitCode;

use super::PlanFormat;
use super::cmd_plan::{error_chain, print};
use super::output::Output;

pub(super) fn run(path: &Path, format: PlanFormat, out: &Output) -> std::io::Result<ExitCode> {
    match crate::plan::file::load(path) {
        Ok(file) => {
            let problems = crate::plan::verify::inconsistencies(&file.plan);
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("  - {p}");
                }
                out.error(&format!(
                    "{} was edited: what it lists is not what it would write; make the plan again",
                    path.display()
                ));
                return Ok(ExitCode::from(1));
            }
            print(&file.plan, format, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.error(&error_chain(&e));
            Ok(ExitCode::from(1))
        }
    }
}
