//! Loading a stack directory whole: its documents (an overlay's merged over its base's), each
//! schema-checked and typed, and its functions' scripts, all within one trust root.

use std::path::Path;

use super::load::{ManifestSet, load_doc, read_scripts};
use super::trust::TrustRoot;
use crate::diag::{Diagnostic, Diagnostics};

/// Loads every manifest below `dir`, with the trust root [`TrustRoot::for_dir`] chooses (the
/// Git work tree that holds `dir`, else `dir`).
///
/// Returns what could be loaded and every problem found while loading (syntax, schema, types).
/// Cross-document checks are [`super::check::check`]'s job.
#[must_use]
pub fn load_dir(dir: &Path) -> (ManifestSet, Diagnostics) {
    if !dir.is_dir() {
        return not_a_directory(dir);
    }
    match TrustRoot::for_dir(dir) {
        Ok(root) => load_dir_in(dir, &root),
        Err(e) => {
            let mut diags = Diagnostics::default();
            diags.push(Diagnostic::error(e));
            (ManifestSet::default(), diags)
        }
    }
}

fn not_a_directory(dir: &Path) -> (ManifestSet, Diagnostics) {
    let mut diags = Diagnostics::default();
    diags.push(
        Diagnostic::error(format!("{} is not a directory", dir.display()))
            .hint("pass the directory that holds the stack's manifests"),
    );
    let set = ManifestSet {
        dir: dir.to_path_buf(),
        ..ManifestSet::default()
    };
    (set, diags)
}

/// Loads every manifest below `dir`, reading nothing that does not resolve inside `root`:
/// `dir` itself, the folders and files walked, an overlay's bases and the scripts.
#[must_use]
pub fn load_dir_in(dir: &Path, root: &TrustRoot) -> (ManifestSet, Diagnostics) {
    if !dir.is_dir() {
        return not_a_directory(dir);
    }
    let mut diags = Diagnostics::default();
    let mut set = ManifestSet {
        dir: dir.to_path_buf(),
        ..ManifestSet::default()
    };
    if root.resolve(dir).is_err() {
        diags.push(
            Diagnostic::error(format!(
                "{} resolves outside the trust root; nothing there is read",
                dir.display()
            ))
            .hint(root.hint()),
        );
        return (set, diags);
    }
    for raw in super::overlay::raw_docs(dir, root, &mut set, &mut diags, 0) {
        load_doc(raw, &mut set, &mut diags);
    }
    read_scripts(&mut set, root, &mut diags);
    (set, diags)
}
