//! Diagnostics as text, in the shape of compiler errors: a header, the location, the source
//! line with a marker under the offending span, then the field path, hint and related places.
//!
//! Colour is a parameter: callers decide from `NO_COLOR`, `--color` and whether stderr is a
//! terminal. Snapshot tests render with colour off.

use std::io::{self, Write};
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics, Severity};

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Whether to emit ANSI escapes.
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// Renders one diagnostic. `source` gives a file's text, to show the offending line.
///
/// # Errors
/// Only the writer's.
pub fn render<'a>(
    d: &Diagnostic,
    source: &dyn Fn(&Path) -> Option<&'a str>,
    style: Style,
    w: &mut dyn Write,
) -> io::Result<()> {
    let line_of = |file: &Path, n: usize| source(file).and_then(|t| t.lines().nth(n));
    render_with(d, &line_of, style, w)
}

/// [`render`], with the offending line found by `line_of(file, index from 0)`.
fn render_with<'a>(
    d: &Diagnostic,
    line_of: &dyn Fn(&Path, usize) -> Option<&'a str>,
    style: Style,
    w: &mut dyn Write,
) -> io::Result<()> {
    let (label, code) = match d.severity {
        Severity::Error => ("error", "1;31"),
        Severity::Warning => ("warning", "1;33"),
    };
    writeln!(
        w,
        "{}{}",
        style.paint(code, label),
        style.paint("1", &format!(": {}", d.message))
    )?;
    let gutter_width = d
        .location
        .as_ref()
        .and_then(|l| l.span)
        .map_or(1, |s| s.line.to_string().len());
    let pad = " ".repeat(gutter_width);
    if let Some(loc) = &d.location {
        writeln!(w, "{pad}{} {loc}", style.paint("1;34", "-->"))?;
        if let Some(span) = loc.span
            && let Some(line) = line_of(&loc.file, span.line.saturating_sub(1))
        {
            let line = line.replace('\t', " ");
            let bar = style.paint("1;34", "|");
            let width = line.chars().count();
            let start = span.col.saturating_sub(1).min(width);
            let len = span.len.clamp(1, width.saturating_sub(start).max(1));
            writeln!(w, "{pad} {bar}")?;
            writeln!(
                w,
                "{} {bar} {line}",
                style.paint("1;34", &format!("{:>gutter_width$}", span.line))
            )?;
            writeln!(
                w,
                "{pad} {bar} {}{}",
                " ".repeat(start),
                style.paint(code, &"^".repeat(len))
            )?;
        }
    }
    let eq = style.paint("1;34", "=");
    if let Some(field) = &d.field
        && !field.is_empty()
    {
        writeln!(w, "{pad} {eq} field: {field}")?;
    }
    if let Some(hint) = &d.hint {
        writeln!(w, "{pad} {eq} {}: {hint}", style.paint("1;36", "hint"))?;
    }
    for (loc, note) in &d.related {
        writeln!(w, "{pad} {eq} note: {note} ({loc})")?;
    }
    Ok(())
}

/// Renders every diagnostic, a blank line between them.
///
/// # Errors
/// Only the writer's.
pub fn render_all<'a>(
    diags: &Diagnostics,
    source: &dyn Fn(&Path) -> Option<&'a str>,
    style: Style,
    w: &mut dyn Write,
) -> io::Result<()> {
    // Each file's lines are split once: a file with thousands of diagnostics renders in
    // linear time.
    let lines: std::cell::RefCell<std::collections::HashMap<std::path::PathBuf, Vec<&'a str>>> =
        std::cell::RefCell::default();
    let line_of = |file: &Path, n: usize| -> Option<&'a str> {
        let mut cache = lines.borrow_mut();
        if !cache.contains_key(file) {
            let split = source(file)
                .map(|t| t.lines().collect())
                .unwrap_or_default();
            cache.insert(file.to_path_buf(), split);
        }
        cache.get(file).and_then(|l| l.get(n).copied())
    };
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        render_with(d, &line_of, style, w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Location, Span};
    use std::path::PathBuf;

    #[test]
    fn marks_the_span_under_the_line() {
        let d = Diagnostic::error("memory is too low")
            .at(Location {
                file: PathBuf::from("f.yaml"),
                span: Some(Span {
                    line: 2,
                    col: 11,
                    offset: 0,
                    len: 2,
                }),
            })
            .field("spec.memory")
            .hint("at least 128");
        let text = "spec:\n  memory: 64\n";
        let mut out = Vec::new();
        render(&d, &|_| Some(text), Style { color: false }, &mut out).expect("renders");
        let out = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            out,
            "error: memory is too low\n --> f.yaml:2:11\n  |\n2 |   memory: 64\n  |           ^^\n  = field: spec.memory\n  = hint: at least 128\n"
        );
    }
}
