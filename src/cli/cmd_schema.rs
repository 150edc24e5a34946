//! `scar schema`: prints a JSON Schema, or writes them all.

use std::io::Write;
use std::path::PathBuf;

use super::SchemaKind;
use super::exit::{Done, Outcome};
use crate::manifest::schema::{self, Kind};

/// The arguments of `scar schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Which schema: manifest (any kind), stack, function, workflow or overlay.
    #[arg(value_enum, default_value_t = SchemaKind::Manifest)]
    pub kind: SchemaKind,
    /// Write all schema files (stack.json, function.json, workflow.json, overlay.json,
    /// manifest.json)
    /// into this directory instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

pub(super) fn run(args: &SchemaArgs) -> Outcome {
    let (kind, write) = (args.kind, args.write.as_deref());
    if let Some(dir) = write {
        std::fs::create_dir_all(dir)?;
        for (name, text) in schema::files() {
            std::fs::write(dir.join(name), text)?;
        }
        eprintln!(
            "wrote {} schema files to {}",
            schema::files().len(),
            dir.display()
        );
        return Ok(Done::Success);
    }
    let value = match kind {
        SchemaKind::Manifest => schema::manifest_schema(),
        SchemaKind::Stack => schema::schema_for(Kind::Stack),
        SchemaKind::Function => schema::schema_for(Kind::Function),
        SchemaKind::Workflow => schema::schema_for(Kind::Workflow),
        SchemaKind::Overlay => schema::schema_for(Kind::Overlay),
    };
    let text = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(Done::Success)
}
