//! `scar plan DIR`: validate, read live AWS state, print the plan; optionally save it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::output::Output;
use super::{AwsArgs, PlanFormat, session};
use crate::plan::file::{PlanFile, save};
use crate::plan::{FORMAT_VERSION, Plan};
use crate::render::plan_text::Palette;

pub(super) struct Args<'a> {
    pub dir: &'a Path,
    pub out: Option<&'a Path>,
    pub detailed_exitcode: bool,
    pub format: PlanFormat,
    pub destroy: bool,
    pub allow_empty: bool,
}

pub(super) fn run(args: &Args<'_>, aws: &AwsArgs, out: &Output) -> std::io::Result<ExitCode> {
    let (set, desired) = match session::load_set(args.dir, out) {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let rt = session::runtime()?;
    let result = rt.block_on(async {
        let cloud = session::connect(aws, &desired).await;
        cloud.refresh(&desired.to_read(args.destroy)).await
    });
    let live = match result {
        Ok(l) => l,
        Err(e) => return Ok(session::cloud_failed(out, "reading live state failed", &e)),
    };
    if !args.destroy
        && let Err(code) = session::check_empty(&desired, &live, args.allow_empty, out)
    {
        return Ok(code);
    }
    let mut plan = session::build_plan(&desired, &live, args.destroy);
    if plan.reshapes_workflow() && !args.destroy {
        plan.workflow_graph = Some(crate::render::graph::build(&set).mermaid());
    }
    print(&plan, args.format, out)?;
    if let Some(path) = args.out {
        let file = PlanFile {
            format_version: FORMAT_VERSION.to_owned(),
            scar_version: env!("CARGO_PKG_VERSION").to_owned(),
            dir: args.dir.display().to_string(),
            desired,
            plan: plan.clone(),
        };
        if let Err(e) = save(path, &file) {
            out.error(&error_chain(&e));
            return Ok(ExitCode::from(1));
        }
        eprintln!(
            "Saved the plan to: {}\nTo apply exactly this plan, run: scar apply {}",
            path.display(),
            path.display()
        );
    }
    Ok(if !plan.errors.is_empty() {
        ExitCode::from(1)
    } else if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints a plan to stdout in `format`.
pub(super) fn print(plan: &Plan, format: PlanFormat, out: &Output) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        PlanFormat::Text => write!(
            stdout,
            "{}",
            crate::render::plan_text::render(
                plan,
                Palette {
                    color: out.out_color()
                }
            )
        ),
        PlanFormat::Markdown => write!(stdout, "{}", crate::render::plan_markdown::render(plan)),
        PlanFormat::Json => writeln!(
            stdout,
            "{}",
            serde_json::to_string_pretty(&crate::render::plan_json::render(plan))
                .map_err(std::io::Error::other)?
        ),
    }
}

/// An error and its causes on one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}
