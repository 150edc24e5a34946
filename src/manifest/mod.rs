//! Manifests: the YAML documents a user writes, loaded with positions, checked against the JSON
//! Schemas generated from [`types`], then checked across documents ([`check`]).
//!
//! Nothing here makes a network call: `scar validate` is safe to run anywhere.

pub mod check;
pub mod contract;
pub mod dir;
pub mod load;
pub mod names;
pub mod overlay;
pub mod resolve;
pub mod schema;
pub mod trust;
pub mod types;
pub mod yaml;

pub use dir::{load_dir, load_dir_in};
pub use load::{Doc, ManifestSet, SourceFile};
pub use trust::TrustRoot;
