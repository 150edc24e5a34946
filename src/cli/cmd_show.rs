//! `scar show plan.json`: prints a saved plan in any format, with no AWS call. A file whose
//! listed changes are not what its attributes would write (an edited file) is refused: what
//! `show` renders is what `apply` would run, and `apply` runs it only if the manifests and
//! AWS still give exactly this plan.

use std::path::PathBuf;

use super::PlanFormat;
use super::exit::{Done, Failure, Outcome};
use super::output::Output;
use super::output::{error_chain, print_plan};

/// The arguments of `scar show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A plan file written by `scar plan -o`.
    pub plan: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

pub(super) fn run(args: &ShowArgs, out: &Output) -> Outcome {
    let (path, format) = (args.plan.as_path(), args.format);
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
                return Err(Failure::Reported);
            }
            print_plan(&file.plan, format, out)?;
            Ok(Done::Success)
        }
        Err(e) => {
            out.error(&error_chain(&e));
            Err(Failure::Reported)
        }
    }
}
