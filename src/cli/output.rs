//! Output settings: colour (NO_COLOR, terminals, `--color`), logging through tracing, and the
//! few plain messages every command prints.

use std::io::{BufRead, IsTerminal, Write};

use super::{ColorChoice, LogFormat, PlanFormat};
use crate::diag::Diagnostics;
use crate::manifest::ManifestSet;
use crate::plan::Plan;
use crate::render::diagnostic::{Style, render_all};
use crate::render::plan_text::Palette;

/// Where and how a command writes for people.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Style for stderr.
    pub err_style: Style,
    /// Whether stdout gets colour.
    stdout_color: bool,
}

impl Output {
    /// Decides colour once, from `--color`, `NO_COLOR` and whether stderr is a terminal.
    #[must_use]
    pub fn new(choice: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && !dumb && tty,
        };
        Self {
            err_style: Style {
                color: decide(std::io::stderr().is_terminal()),
            },
            stdout_color: decide(std::io::stdout().is_terminal()),
        }
    }

    /// Whether to colour what goes to stdout.
    #[must_use]
    pub fn out_color(&self) -> bool {
        self.stdout_color
    }

    /// Prints diagnostics to stderr with source snippets from `set`.
    pub fn diagnostics(&self, diags: &Diagnostics, set: &ManifestSet) {
        let mut err = std::io::stderr().lock();
        let source = |p: &std::path::Path| set.source(p);
        let _ = render_all(diags, &source, self.err_style, &mut err);
        if !diags.is_empty() {
            let _ = writeln!(err);
        }
    }

    /// Prints a one-line error to stderr.
    pub fn error(&self, msg: &str) {
        let label = if self.err_style.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        eprintln!("{label}: {msg}");
    }

    /// Prints a one-line warning to stderr.
    pub fn warn(&self, msg: &str) {
        let label = if self.err_style.color {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        eprintln!("{label}: {msg}");
    }
}

/// Sets up tracing to stderr: `SCAR_LOG` (an env-filter) wins over `-v`. JSON logs are for
/// log pipelines, so they start at scar's `info` events (a watcher's runs, the lock).
pub fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match (verbose, format) {
        (0, LogFormat::Json) => "warn,scar=info",
        (0, LogFormat::Text) => "warn",
        (1, _) => "scar=info",
        (2, _) => "scar=debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("SCAR_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// "1 error", "2 warnings".
#[must_use]
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Prints a plan to stdout in `format`.
pub(super) fn print_plan(plan: &Plan, format: PlanFormat, out: &Output) -> std::io::Result<()> {
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
/// Prints `rows` under `header` in columns two spaces apart, each as wide as its widest
/// cell (in characters), no line ending in spaces.
pub(super) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(header.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// The command line as a reconcile step's [`crate::reconcile::Ui`]: plans printed to stdout in
/// the format asked for, errors and warnings on stderr, confirmation asked on the terminal,
/// progress as lines.
pub(super) struct Terminal<'a> {
    /// Where and how to write.
    pub out: &'a Output,
    /// The format plans are shown in.
    pub format: PlanFormat,
}

impl crate::reconcile::Ui for Terminal<'_> {
    fn show(&self, plan: &Plan) -> std::io::Result<()> {
        print_plan(plan, self.format, self.out)
    }

    fn confirm(&self, plan: &Plan) -> bool {
        if !std::io::stdin().is_terminal() {
            self.out.error("no terminal to confirm on: pass --auto-approve to apply without asking (nothing was changed)");
            return false;
        }
        let verb = if plan.destroy { "destroy" } else { "perform" };
        print!(
            "\nDo you want to {verb} these actions in stack `{}`?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ",
            plan.stack
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() == "yes" {
            true
        } else {
            self.out.error("apply cancelled; nothing was changed");
            false
        }
    }

    fn error(&self, message: &str) {
        self.out.error(message);
    }

    fn warn(&self, message: &str) {
        self.out.warn(message);
    }

    fn line(&self, text: &str) {
        eprintln!("{text}");
    }

    fn progress(&self) -> &dyn crate::apply::Progress {
        &super::progress::Lines
    }
}
