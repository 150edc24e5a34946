//! `scar validate DIR`: schema and semantic checks, every problem at once, no AWS call.

use std::io::Write;
use std::path::PathBuf;

use super::Format;
use super::exit::{Done, Failure, Outcome};
use super::output::{Output, count};

/// The arguments of `scar validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The stack directory (every *.yaml and *.yml below it is read).
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub(super) fn run(args: &ValidateArgs, out: &Output) -> Outcome {
    let (dir, format) = (args.dir.as_path(), args.format);
    let (set, diags) = super::session::validate(dir);
    let valid = !diags.has_errors();
    let stack = set.stack().map(|s| s.value.metadata.name.clone());
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "valid": valid,
                "errors": diags.error_count(),
                "warnings": diags.warning_count(),
                "stack": stack,
                "functions": set.functions.iter().map(|f| &f.value.metadata.name).collect::<Vec<_>>(),
                "workflows": set.workflows.iter().map(|w| &w.value.metadata.name).collect::<Vec<_>>(),
                "diagnostics": diags,
            });
            let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
            writeln!(std::io::stdout().lock(), "{text}")?;
        }
        Format::Text => {
            out.diagnostics(&diags, &set);
            if valid {
                let mut line = format!(
                    "valid: stack `{}` with {} and {} ({})",
                    stack.unwrap_or_default(),
                    count(set.functions.len(), "function"),
                    count(set.workflows.len(), "workflow"),
                    dir.display()
                );
                if diags.warning_count() > 0 {
                    line.push_str(&format!(", {}", count(diags.warning_count(), "warning")));
                }
                writeln!(std::io::stdout().lock(), "{line}")?;
            } else {
                out.error(&format!(
                    "{} is invalid: {}, {}",
                    dir.display(),
                    count(diags.error_count(), "error"),
                    count(diags.warning_count(), "warning")
                ));
            }
        }
    }
    if valid {
        Ok(Done::Success)
    } else {
        Err(Failure::Reported)
    }
}
