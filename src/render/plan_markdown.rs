//! A plan as a pull-request comment: the summary line and a table first, the details folded,
//! and the whole kept under GitHub's 65,536-character comment limit with a note when cut.

use std::fmt::Write as _;

use super::plan_text::{self, Palette};
use crate::plan::{Action, Cause, Plan};

/// GitHub's limit on a comment body.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing lines and the truncation note.
const RESERVE: usize = 600;

/// Renders the comment.
#[must_use]
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let sum = plan.summary();
    let _ = writeln!(out, "### scar plan: `{}` ({})\n", plan.stack, plan.region);
    if !plan.errors.is_empty() {
        let _ = writeln!(out, "**The plan has errors and cannot be applied.**\n");
        for e in &plan.errors {
            let _ = writeln!(
                out,
                "- `{}`: {}{}",
                e.address,
                e.message,
                e.hint
                    .as_ref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            );
        }
        return out;
    }
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "**No changes.** The live AWS resources match the manifests."
        );
        return out;
    }
    let _ = writeln!(
        out,
        "**Plan: {} to add, {} to change, {} to destroy.**\n",
        sum.add, sum.change, sum.destroy
    );
    let _ = writeln!(out, "| | resource | action | cause |\n|---|---|---|---|");
    let mut table_cut = 0;
    for s in plan.changes() {
        let row = format!(
            "| `{}` | `{}` | {} | {} |\n",
            s.symbol(),
            s.address,
            match s.action {
                Action::Create => "create",
                Action::Update => "update in-place",
                Action::Replace => "replace",
                Action::Delete => "destroy",
                Action::NoOp => "no-op",
            },
            match s.cause {
                Cause::Drift => "drift",
                Cause::Manifest => "manifest",
            }
        );
        if out.len() + row.len() > GITHUB_COMMENT_LIMIT / 2 {
            table_cut += 1;
            continue;
        }
        out.push_str(&row);
    }
    if table_cut > 0 {
        let _ = writeln!(
            out,
            "\n_{table_cut} more rows left out to fit GitHub's comment limit._"
        );
    }
    if let Some(g) = &plan.workflow_graph
        && out.len() + g.len() + GITHUB_COMMENT_LIMIT / 4 < GITHUB_COMMENT_LIMIT / 2
    {
        let _ = writeln!(
            out,
            "\n<details><summary>Workflow after this plan</summary>\n\n```mermaid\n{g}```\n</details>"
        );
    }
    let _ = writeln!(out, "\n<details><summary>Details</summary>\n\n```diff");
    let mut cut = 0;
    for s in plan.changes() {
        let mut block = String::new();
        plan_text::step(s, Palette { color: false }, &mut block);
        if out.len() + block.len() + RESERVE > GITHUB_COMMENT_LIMIT {
            cut += 1;
            continue;
        }
        out.push_str(&block);
        out.push('\n');
    }
    let _ = writeln!(out, "```\n</details>");
    if cut > 0 {
        let _ = writeln!(
            out,
            "\n> **Truncated:** {cut} resources are not shown in detail to stay under GitHub's {GITHUB_COMMENT_LIMIT}-character limit. Run `scar show plan.json` for the full plan."
        );
    }
    out
}
