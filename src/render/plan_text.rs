//! A plan as text, in Terraform's grammar so people and pull-request bots read it without
//! learning anything new: a legend of the symbols used, `# <address> will be ...` headers,
//! `~ field = old -> new` lines, `# forces replacement`, `(known after apply)`,
//! `(sensitive value)`, unchanged attributes collapsed, multi-line values as unified diffs, and
//! the closing `Plan: X to add, Y to change, Z to destroy.` or `No changes.`

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::plan::{Action, Cause, Plan, Step};

/// Colour codes, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Emit ANSI colours.
    pub color: bool,
}

impl Palette {
    fn paint(self, action: Action, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match action {
            Action::Create => "32",
            Action::Update => "33",
            Action::Replace | Action::Delete => "31",
            Action::NoOp => return text.to_owned(),
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn bold(self, text: &str) -> String {
        if self.color {
            format!("\x1b[1m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

const INDENT: &str = "    ";

/// Renders the whole plan.
#[must_use]
pub fn render(plan: &Plan, p: Palette) -> String {
    let mut out = String::new();
    for e in &plan.errors {
        let _ = writeln!(out, "{}: {}: {}", p.bold("Error"), e.address, e.message);
        if let Some(h) = &e.hint {
            let _ = writeln!(out, "  hint: {h}");
        }
    }
    if !plan.errors.is_empty() {
        let _ = writeln!(
            out,
            "\nThe plan cannot be applied until the errors above are fixed."
        );
        return out;
    }
    let drifted: Vec<&Step> = plan.changes().filter(|s| s.cause == Cause::Drift).collect();
    if !drifted.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            p.bold("Note: Objects have changed outside of scar")
        );
        let _ = writeln!(
            out,
            "scar detected the following changes made outside of scar since the last \"scar apply\":\n"
        );
        for s in &drifted {
            let _ = writeln!(out, "  # {} has changed", s.address);
            for c in &s.changes {
                let now = c
                    .before
                    .as_ref()
                    .map_or_else(|| "null".to_owned(), |v| masked(s, &c.field, v));
                let _ = writeln!(out, "      {} = {now}", c.field);
            }
        }
        let _ = writeln!(
            out,
            "\nApplying this plan restores what the manifests say.\n"
        );
    }
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "{} The live AWS resources match the manifests.",
            p.bold("No changes.")
        );
        notes(plan, &mut out);
        return out;
    }
    legend(plan, p, &mut out);
    let _ = writeln!(out, "\nscar will perform the following actions:\n");
    for s in plan.changes() {
        step(s, p, &mut out);
        out.push('\n');
    }
    notes(plan, &mut out);
    let sum = plan.summary();
    let _ = writeln!(
        out,
        "{} {} to add, {} to change, {} to destroy.",
        p.bold("Plan:"),
        sum.add,
        sum.change,
        sum.destroy
    );
    out
}

fn notes(plan: &Plan, out: &mut String) {
    for n in &plan.notes {
        let _ = writeln!(out, "Note: {n}");
    }
    if !plan.notes.is_empty() {
        out.push('\n');
    }
}

fn legend(plan: &Plan, p: Palette, out: &mut String) {
    let _ = writeln!(
        out,
        "scar compared the manifests with live AWS state and made this plan.\nResource actions are indicated with the following symbols:"
    );
    for (action, symbol, text) in [
        (Action::Create, "+", "create"),
        (Action::Update, "~", "update in-place"),
        (
            Action::Replace,
            "-/+",
            "destroy and then create replacement",
        ),
        (
            Action::Replace,
            "+/-",
            "create replacement and then destroy",
        ),
        (Action::Delete, "-", "destroy"),
    ] {
        if plan
            .steps
            .iter()
            .any(|s| s.action == action && s.symbol() == symbol)
        {
            let _ = writeln!(out, "{} {text}", p.paint(action, &format!("{symbol:>3}")));
        }
    }
}

fn header(s: &Step) -> String {
    let what = match s.action {
        Action::Create => "will be created",
        Action::Update => "will be updated in-place",
        Action::Replace if s.reason == Some(crate::plan::Reason::NewRevision) => {
            "gets a new revision"
        }
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is unchanged",
    };
    if let Some(with) = &s.covered_by {
        return format!("  # {} {what} (with {with})", s.address);
    }
    let why = match (&s.reason, s.cause) {
        (Some(crate::plan::Reason::DeleteBecauseNoManifest), _) => {
            " (no manifest asks for it any more)"
        }
        (Some(crate::plan::Reason::DeleteBecauseReplaced), _) => {
            " (replaced by the new environment: EC2 and Fargate cannot change into each other)"
        }
        (Some(crate::plan::Reason::NewRevision), _) => {
            " (job definitions cannot change; the old revision is deregistered after)"
        }
        (Some(crate::plan::Reason::ReplaceByRequest), _) => " (as requested with --replace)",
        (Some(crate::plan::Reason::ReplaceWithFunction), _) => {
            " (with its function: Lambda deletes a function's permissions and invoke configuration with it)"
        }
        (Some(crate::plan::Reason::AdoptCreatedByAws), _) => {
            " (created by AWS for a function of this stack; taken over)"
        }
        (Some(crate::plan::Reason::AdoptUnfinishedCreate), _) => {
            " (the stack's failures bucket, left untagged by an apply that stopped; taken over if S3 confirms it is in this account)"
        }
        (_, Cause::Drift) => " (restores a change made outside scar)",
        _ => "",
    };
    format!("  # {} {what}{why}", s.address)
}

fn is_sensitive(s: &Step, path: &str) -> bool {
    s.sensitive.iter().any(|p| p == path)
}

/// Renders one step.
pub fn step(s: &Step, p: Palette, out: &mut String) {
    let _ = writeln!(out, "{}", header(s));
    let sym = p.paint(s.action, &format!("{:>3}", s.symbol()));
    let _ = writeln!(out, "{sym} {} \"{}\" {{", s.address.kind, s.address.name);
    match s.action {
        Action::Create => {
            let mut hidden = 0;
            for c in &s.changes {
                let value = match &c.after {
                    Some(v) if is_blank(v) => {
                        hidden += 1;
                        continue;
                    }
                    Some(v) => value(v, &c.field, s),
                    None => "(known after apply)".into(),
                };
                let _ = writeln!(
                    out,
                    "{INDENT}  {} {} = {value}",
                    p.paint(Action::Create, "+"),
                    c.field
                );
            }
            if hidden > 0 {
                let _ = writeln!(out, "{INDENT}    # ({hidden} empty attributes hidden)");
            }
        }
        Action::Delete => {
            if let Some(before) = &s.before {
                for (k, v) in before.iter().filter(|(k, _)| is_identity(k)) {
                    let _ = writeln!(
                        out,
                        "{INDENT}  {} {k} = {} -> null",
                        p.paint(Action::Delete, "-"),
                        scalar(v, false)
                    );
                }
                let hidden = before.keys().filter(|k| !is_identity(k)).count();
                if hidden > 0 {
                    let _ = writeln!(out, "{INDENT}    # ({hidden} attributes hidden)");
                }
            }
        }
        Action::Update | Action::Replace => {
            if let Some(before) = &s.before {
                for (k, v) in before.iter().filter(|(k, _)| is_identity(k)) {
                    if !s.changes.iter().any(|c| &c.field == k) {
                        let _ = writeln!(out, "{INDENT}    {k} = {}", scalar(v, false));
                    }
                }
            }
            for c in &s.changes {
                change(s, c, p, out);
            }
            let total = s.after.as_ref().map_or(0, Map::len);
            let shown = s.changes.len()
                + s.before.as_ref().map_or(0, |b| {
                    b.keys()
                        .filter(|k| is_identity(k) && !s.changes.iter().any(|c| &c.field == *k))
                        .count()
                });
            if total > shown {
                let _ = writeln!(
                    out,
                    "{INDENT}    # ({} unchanged attributes hidden)",
                    total - shown
                );
            }
        }
        Action::NoOp => {}
    }
    let _ = writeln!(out, "{INDENT}}}");
}

/// Attributes that identify a resource, shown even when unchanged.
fn is_identity(k: &str) -> bool {
    matches!(k, "name" | "bucket" | "id" | "function" | "statement_id")
}

fn change(s: &Step, c: &crate::plan::FieldChange, p: Palette, out: &mut String) {
    let forces = if c.forces_replacement && s.reason == Some(crate::plan::Reason::NewRevision) {
        " # forces a new revision"
    } else if c.forces_replacement {
        " # forces replacement"
    } else {
        ""
    };
    let sensitive = is_sensitive(s, &c.field);
    match (&c.before, &c.after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) if is_flat(b) && is_flat(a) => {
            let _ = writeln!(
                out,
                "{INDENT}  {} {} = {{{forces}",
                p.paint(Action::Update, "~"),
                c.field
            );
            map_diff(s, &c.field, b, a, p, out);
            let _ = writeln!(out, "{INDENT}    }}");
        }
        (Some(b), Some(a)) if is_multiline(b) || is_multiline(a) => {
            let _ = writeln!(
                out,
                "{INDENT}  {} {} = <<-DIFF{forces}",
                p.paint(Action::Update, "~"),
                c.field
            );
            for line in unified(b, a).lines() {
                let _ = writeln!(out, "{INDENT}{INDENT}{line}");
            }
            let _ = writeln!(out, "{INDENT}    DIFF");
        }
        (before, after) => {
            let old = before
                .as_ref()
                .map_or_else(|| "null".to_owned(), |v| scalar(v, sensitive));
            let new = after.as_ref().map_or_else(
                || "(known after apply)".to_owned(),
                |v| scalar(v, sensitive),
            );
            let sym = if before.is_none() {
                Action::Create
            } else {
                Action::Update
            };
            let _ = writeln!(
                out,
                "{INDENT}  {} {} = {old} -> {new}{forces}",
                p.paint(sym, sym.symbol()),
                c.field
            );
        }
    }
}

fn is_flat(m: &Map<String, Value>) -> bool {
    m.values().all(|v| !v.is_object() && !v.is_array())
}

fn map_diff(
    s: &Step,
    field: &str,
    b: &Map<String, Value>,
    a: &Map<String, Value>,
    p: Palette,
    out: &mut String,
) {
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut unchanged = 0;
    for k in keys {
        let sensitive = is_sensitive(s, &format!("{field}.{k}"));
        let key = serde_json::to_string(k).unwrap_or_default();
        match (b.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => unchanged += 1,
            (Some(x), Some(y)) => {
                let _ = writeln!(
                    out,
                    "{INDENT}      {} {key} = {} -> {}",
                    p.paint(Action::Update, "~"),
                    scalar(x, sensitive),
                    scalar(y, sensitive)
                );
            }
            (None, Some(y)) => {
                let _ = writeln!(
                    out,
                    "{INDENT}      {} {key} = {}",
                    p.paint(Action::Create, "+"),
                    scalar(y, sensitive)
                );
            }
            (Some(x), None) => {
                let _ = writeln!(
                    out,
                    "{INDENT}      {} {key} = {} -> null",
                    p.paint(Action::Delete, "-"),
                    scalar(x, sensitive)
                );
            }
            (None, None) => {}
        }
    }
    if unchanged > 0 {
        let _ = writeln!(
            out,
            "{INDENT}        # ({unchanged} unchanged elements hidden)"
        );
    }
}

fn is_multiline(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\n'),
        Value::Object(m) => m.values().any(|x| x.is_object() || x.is_array()),
        Value::Array(a) => a.iter().any(|x| x.is_object()),
        _ => false,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// A unified line diff of two multi-line values (scripts, policies).
#[must_use]
pub fn unified(before: &Value, after: &Value) -> String {
    let (b, a) = (text_of(before), text_of(after));
    similar::TextDiff::from_lines(&b, &a)
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(false)
        .to_string()
}

fn value(v: &Value, field: &str, s: &Step) -> String {
    match v {
        Value::Object(m) if !m.is_empty() && is_flat(m) => {
            let mut out = String::from("{\n");
            for (k, x) in m {
                let sensitive = is_sensitive(s, &format!("{field}.{k}"));
                let key = serde_json::to_string(k).unwrap_or_default();
                let _ = writeln!(out, "{INDENT}      + {key} = {}", scalar(x, sensitive));
            }
            let _ = write!(out, "{INDENT}    }}");
            out
        }
        Value::Object(m) if !m.is_empty() => {
            let text = serde_json::to_string_pretty(v).unwrap_or_default();
            let body: Vec<String> = text
                .lines()
                .map(|l| format!("{INDENT}{INDENT}  {l}"))
                .collect();
            format!("jsonencode(\n{}\n{INDENT}    )", body.join("\n"))
        }
        other => scalar(other, is_sensitive(s, field)),
    }
}

/// A value for the drift note, with sensitive map entries masked.
fn masked(s: &Step, field: &str, v: &Value) -> String {
    if is_sensitive(s, field) {
        return "(sensitive value)".into();
    }
    match v {
        Value::Object(m) => {
            let mut copy = m.clone();
            for (k, x) in copy.iter_mut() {
                if is_sensitive(s, &format!("{field}.{k}")) {
                    *x = Value::String("(sensitive value)".into());
                }
            }
            serde_json::to_string(&Value::Object(copy)).unwrap_or_default()
        }
        other => scalar(other, false),
    }
}

/// True for values a create leaves out of the listing: nothing, or empty.
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn scalar(v: &Value, sensitive: bool) -> String {
    if sensitive {
        return "(sensitive value)".into();
    }
    if crate::model::Reference::from_value(v).is_some() {
        return "(known after apply)".into();
    }
    match v {
        Value::String(s) if s.contains('\n') => format!("<<-EOT ({} lines)", s.lines().count()),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}
