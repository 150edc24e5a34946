//! The crate's layers: no top-level module of `src` depends, directly or through others, on a
//! module that depends back on it. A dependency is a `crate::<module>` path in code (comments
//! and `#[cfg(test)]` modules are left out: a doc link or a unit test's fixture is not a layer).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file: comments removed, and everything from its `#[cfg(test)]` module on.
fn code(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    let mut out = String::new();
    for line in text[..end].lines() {
        // A `//` inside a string literal ends the line early here; the paths this test looks
        // for are never in strings after one.
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level module a file belongs to (`src/aws/read.rs` -> `aws`), `None` for the crate
/// roots.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Module -> the modules its code names, with the files that name them.
fn dependencies() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file");
        let code = code(&text);
        let entry = deps.entry(from.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let to: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !to.is_empty() && to != from {
                let shown = file
                    .strip_prefix(&src)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                entry.entry(to).or_default().insert(shown);
            }
        }
    }
    deps
}

/// A path from `from` to `to` through `deps`, if there is one.
fn path(
    deps: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_owned()]];
    while let Some(p) = stack.pop() {
        let last = p.last().expect("a non-empty path").clone();
        if last == to {
            return Some(p);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in deps.get(&last).into_iter().flat_map(BTreeMap::keys) {
            let mut q = p.clone();
            q.push(next.clone());
            stack.push(q);
        }
    }
    None
}

#[test]
fn no_module_depends_on_one_that_depends_back_on_it() {
    let deps = dependencies();
    let mut cycles = Vec::new();
    for (from, tos) in &deps {
        for (to, files) in tos {
            if let Some(back) = path(&deps, to, from) {
                cycles.push(format!(
                    "{from} -> {to} (in {}), and back: {}",
                    files.iter().cloned().collect::<Vec<_>>().join(", "),
                    back.join(" -> ")
                ));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "cycles between modules:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_check_sees_dependencies() {
    // The check above must not pass for want of reading anything: the CLI sits on top.
    let deps = dependencies();
    let cli = deps.get("cli").expect("the cli module");
    for layer in ["apply", "aws", "manifest", "model", "plan", "render"] {
        assert!(cli.contains_key(layer), "cli uses {layer}");
    }
    assert!(
        deps["aws"].contains_key("cloud"),
        "the adapter uses the port"
    );
    assert!(
        !deps["cloud"].contains_key("aws"),
        "the port does not name the adapter"
    );
}

/// The sibling modules a file's code names, by file (`aws/lambda` -> `aws/refresh`): files and
/// folders of the same folder, named as `super::NAME`, `super::{NAME, ...}` or
/// `crate::FOLDER::NAME`. A folder's own `mod.rs` is the folder, not a sibling.
fn file_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(dir) = file.parent() else { continue };
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if dir == src || matches!(stem, "mod" | "lib" | "main") {
            continue;
        }
        let folder = dir
            .strip_prefix(&src)
            .expect("below src")
            .to_string_lossy()
            .replace('\\', "/");
        let siblings: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("a folder")
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                let name = p.file_stem()?.to_str()?.to_owned();
                (p.is_dir() || p.extension().is_some_and(|x| x == "rs"))
                    .then_some(name)
                    .filter(|n| n != "mod" && n != stem)
            })
            .collect();
        let text = std::fs::read_to_string(&file).expect("a source file");
        let code = code(&text);
        let own_path = format!("crate::{}::", folder.replace('/', "::"));
        let mut named = BTreeSet::new();
        for prefix in ["super::", own_path.as_str()] {
            for (i, _) in code.match_indices(prefix) {
                // `crate::aws::` is also the end of `crate::aws::` inside a longer path only
                // when preceded by an identifier character: skip those.
                if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &code[i + prefix.len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let mut depth = 1;
                    let end = group
                        .char_indices()
                        .find(|&(_, c)| {
                            depth += match c {
                                '{' => 1,
                                '}' => -1,
                                _ => 0,
                            };
                            depth == 0
                        })
                        .map_or(group.len(), |(j, _)| j);
                    let mut level = 0;
                    let mut item = String::new();
                    for c in group[..end].chars().chain([',']) {
                        match c {
                            '{' => level += 1,
                            '}' => level -= 1,
                            ',' if level == 0 => {
                                let name = item.trim().split("::").next().unwrap_or("").trim();
                                named.insert(name.to_owned());
                                item.clear();
                                continue;
                            }
                            _ => {}
                        }
                        item.push(c);
                    }
                } else {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    named.insert(name);
                }
            }
        }
        let entry = deps.entry(format!("{folder}/{stem}")).or_default();
        for n in named.intersection(&siblings) {
            entry.insert(format!("{folder}/{n}"));
        }
    }
    deps
}

#[test]
fn no_file_depends_on_a_sibling_that_depends_back_on_it() {
    let deps = file_dependencies();
    let as_modules: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = deps
        .iter()
        .map(|(from, tos)| {
            let tos = tos.iter().map(|t| (t.clone(), BTreeSet::new())).collect();
            (from.clone(), tos)
        })
        .collect();
    let mut cycles = Vec::new();
    for (from, tos) in &deps {
        for to in tos {
            if let Some(back) = path(&as_modules, to, from) {
                cycles.push(format!("{from} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that depend on each other (move what both need into a third, or pass it in):\n{}",
        cycles.join("\n")
    );
    // The check sees what it should: a file naming its sibling through `super::`.
    assert!(
        deps["cli/cmd_local"].contains("cli/cmd_invoke"),
        "{:?}",
        deps["cli/cmd_local"]
    );
    assert!(
        deps["manifest/overlay"].contains("manifest/load"),
        "{:?}",
        deps["manifest/overlay"]
    );
}
