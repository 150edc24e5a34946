//! `scar graph DIR [--format mermaid|dot]`: the stack's workflow as a picture.

use std::io::Write;
use std::path::PathBuf;

use super::exit::{Done, Outcome};
use super::output::Output;
use super::{GraphFormat, session};

/// The arguments of `scar graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The stack directory.
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

pub(super) fn run(args: &GraphArgs, out: &Output) -> Outcome {
    let (dir, format) = (args.dir.as_path(), args.format);
    let (set, _) = session::load_set(dir, out)?;
    let graph = crate::render::graph::build(&set);
    let text = match format {
        GraphFormat::Mermaid => graph.mermaid(),
        GraphFormat::Dot => graph.dot(),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Done::Success)
}
