//! `scar graph DIR [--format mermaid|dot]`: the stack's workflow as a picture.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::output::Output;
use super::{GraphFormat, session};

pub(super) fn run(dir: &Path, format: GraphFormat, out: &Output) -> std::io::Result<ExitCode> {
    let Ok((set, _)) = session::load_set(dir, out) else {
        return Ok(ExitCode::from(1));
    };
    let graph = crate::render::graph::build(&set);
    let text = match format {
        GraphFormat::Mermaid => graph.mermaid(),
        GraphFormat::Dot => graph.dot(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
