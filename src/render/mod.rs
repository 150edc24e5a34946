//! Renderers: what users read. They write to any `io::Write`, so a `Vec<u8>` is the test double.

pub mod diagnostic;
pub mod graph;
pub mod plan_json;
pub mod plan_markdown;
pub mod plan_text;
pub mod yaml;
