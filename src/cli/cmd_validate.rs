//! `scar validate DIR`: schema and semantic checks, every problem at once, no AWS call.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::Format;
use super::output::{Output, count};
use crate::manifest::check::validate_dir;

pub(super) fn run(dir: &Path, format: Format, out: &Output) -> std::io::Result<ExitCode> {
    let (set, diags) = validate_dir(dir);
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
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
