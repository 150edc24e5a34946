//! `scar graph DIR [--format mermaid|dot]`: the stack's workflow as a picture.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::GraphFormat;
use super::output::{Output, count};
use crate::manifest::check::validate_dir;

pub(super) fn run(dir: &Path, format: GraphFormat, out: &Output) -> std::io::Result<ExitCode> {
    let (set, diags) = validate_dir(dir);
    if diags.has_errors() {
        out.diagnostics(&diags, &set);
        out.error(&format!(
            "{} is invalid ({})",
            dir.display(),
            count(diags.error_count(), "error")
        ));
        return Ok(ExitCode::from(1));
    }
    let graph = crate::render::graph::build(&set);
    let text = match format {
        GraphFormat::Mermaid => graph.mermaid(),
        GraphFormat::Dot => graph.dot(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
