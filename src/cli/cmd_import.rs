//! `scar import FDL -o DIR`: converts a SCAR function definition file, writes the stack, then
//! validates what it wrote.

use std::path::PathBuf;

use super::exit::{Done, Failure, Outcome};
use super::output::{Output, count};
use crate::import::{self, Options};
use crate::manifest::{ManifestSet, SourceFile, check::validate_dir};

/// The arguments of `scar import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The SCAR function definition file (YAML).
    pub fdl: PathBuf,
    /// The directory to write the stack into (must be empty or absent).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The stack name (default: derived from the file name).
    #[arg(long)]
    pub stack: Option<String>,
    /// The stack's region, when the FDL gives none (default us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Write into a non-empty output directory, replacing files of the same name.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn run(args: &ImportArgs, out: &Output) -> Outcome {
    let (fdl, out_dir, force) = (args.fdl.as_path(), args.output.as_path(), args.force);
    let (stack, region) = (args.stack.clone(), args.region.clone());
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
        return Err(Failure::Reported);
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
        return Err(Failure::Reported);
    }
    println!(
        "valid: stack `{}` with {} and {} ({})",
        imported.stack,
        count(set.functions.len(), "function"),
        count(set.workflows.len(), "workflow"),
        out_dir.display()
    );
    Ok(Done::Success)
}
