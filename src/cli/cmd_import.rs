//! `scar import FDL -o DIR`: converts a SCAR function definition file, writes the stack, then
//! validates what it wrote.

use std::path::Path;
use std::process::ExitCode;

use super::output::{Output, count};
use crate::import::{self, Options};
use crate::manifest::{ManifestSet, SourceFile, check::validate_dir};

pub(super) fn run(
    fdl: &Path,
    out_dir: &Path,
    stack: Option<String>,
    region: Option<String>,
    force: bool,
    out: &Output,
) -> std::io::Result<ExitCode> {
    let text = std::fs::read_to_string(fdl).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot read {}: {e}", fdl.display()))
    })?;
    let imported = import::convert(fdl, &text, &Options { stack, region });
    // Messages quote the FDL's lines: never its credentials.
    let sources = ManifestSet {
        files: vec![SourceFile {
            path: fdl.to_path_buf(),
            text: import::redacted(&text, &imported.redact),
        }],
        ..ManifestSet::default()
    };
    out.diagnostics(&imported.diagnostics, &sources);
    if imported.diagnostics.has_errors() {
        out.error(&format!(
            "{} could not be imported ({}); nothing was written",
            fdl.display(),
            count(imported.diagnostics.error_count(), "error")
        ));
        return Ok(ExitCode::from(1));
    }
    import::write(&imported, out_dir, force)?;
    eprintln!(
        "wrote stack `{}` to {} ({} files, {})",
        imported.stack,
        out_dir.display(),
        imported.files.len(),
        count(imported.diagnostics.warning_count(), "warning")
    );
    let (set, diags) = validate_dir(out_dir);
    out.diagnostics(&diags, &set);
    if diags.has_errors() {
        out.error(&format!(
            "the imported stack does not validate ({}); fix the files in {} and run `scar validate`",
            count(diags.error_count(), "error"),
            out_dir.display()
        ));
        return Ok(ExitCode::from(1));
    }
    println!(
        "valid: stack `{}` with {} and {} ({})",
        imported.stack,
        count(set.functions.len(), "function"),
        count(set.workflows.len(), "workflow"),
        out_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
