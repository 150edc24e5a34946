//! Cross-document and semantic checks, after every document passed its schema.
//!
//! Each check reads the typed manifests and the spans kept by the loader and reports every
//! problem it finds, located at the field that causes it. No check makes a network call; the
//! only I/O is looking for script files next to the manifests.

mod function;
mod graph;
mod secrets;
mod stack;

use crate::diag::{Diagnostic, Diagnostics};
use crate::manifest::load::ManifestSet;

/// Runs every semantic check over a loaded set.
#[must_use]
pub fn check(set: &ManifestSet) -> Diagnostics {
    let mut out = Diagnostics::default();
    stack::check(set, &mut out);
    function::check(set, &mut out);
    secrets::check(set, &mut out);
    graph::check(set, &mut out);
    out
}

/// Loads and checks a directory: everything `scar validate` reports, sorted. The trust root
/// is the Git work tree that holds `dir`, else `dir` ([`crate::manifest::TrustRoot::for_dir`]).
#[must_use]
pub fn validate_dir(dir: &std::path::Path) -> (ManifestSet, Diagnostics) {
    finish(dir, crate::manifest::load_dir(dir))
}

/// [`validate_dir`] with the trust root given.
#[must_use]
pub fn validate_dir_in(
    dir: &std::path::Path,
    root: &crate::manifest::TrustRoot,
) -> (ManifestSet, Diagnostics) {
    finish(dir, crate::manifest::load_dir_in(dir, root))
}

fn finish(dir: &std::path::Path, loaded: (ManifestSet, Diagnostics)) -> (ManifestSet, Diagnostics) {
    let (set, mut diags) = loaded;
    if set.files.is_empty() && !diags.has_errors() {
        diags.push(
            Diagnostic::error(format!("no manifests (*.yaml, *.yml) in {}", dir.display()))
                .hint("a stack directory holds one Stack manifest and its Functions"),
        );
    }
    diags.extend(check(&set));
    diags.sort();
    (set, diags)
}

pub use function::is_reserved_env;
pub use graph::{feeds, fires};
pub use secrets::{literal_secret, url_with_password};
