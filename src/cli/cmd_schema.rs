//! `scar schema`: prints a JSON Schema, or writes them all.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::SchemaKind;
use crate::manifest::schema::{self, Kind};

pub(super) fn run(kind: SchemaKind, write: Option<&Path>) -> std::io::Result<ExitCode> {
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
        return Ok(ExitCode::SUCCESS);
    }
    let value = match kind {
        SchemaKind::Manifest => schema::manifest_schema(),
        SchemaKind::Stack => schema::schema_for(Kind::Stack),
        SchemaKind::Function => schema::schema_for(Kind::Function),
        SchemaKind::Workflow => schema::schema_for(Kind::Workflow),
    };
    let text = serde_json::to_string_pretty(&value).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(ExitCode::SUCCESS)
}
