//! Renderers: what users read. They write to any `io::Write`, so a `Vec<u8>` is the test double.

pub mod diagnostic;
pub mod yaml;
