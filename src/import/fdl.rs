//! Reading a SCAR function definition file field by field.
//!
//! Every mapping is consumed key by key: what the importer maps is removed, and whatever is
//! left at the end of a block is reported as having no home in scar, with its location.

use std::path::Path;

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, Location};
use crate::manifest::load::field_path;
use crate::manifest::yaml::{SpanIndex, escape_segment};

/// Reads values out of the FDL and records what happens to each field.
pub(crate) struct Reader<'a> {
    pub path: &'a Path,
    pub spans: SpanIndex,
    pub diags: Diagnostics,
    /// Where credentials stand in the FDL: blanked wherever its text is shown.
    pub redact: Vec<crate::diag::Span>,
}

impl Reader<'_> {
    pub fn loc(&self, pointer: &str) -> Location {
        Location {
            file: self.path.to_path_buf(),
            span: self
                .spans
                .key(pointer)
                .or_else(|| self.spans.nearest(pointer)),
        }
    }

    pub fn warn(&mut self, pointer: &str, msg: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::warning(msg)
            .at(self.loc(pointer))
            .field(field_path(pointer));
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.diags.push(d);
    }

    pub fn error(&mut self, pointer: &str, msg: impl Into<String>) {
        self.diags.push(
            Diagnostic::error(msg)
                .at(self.loc(pointer))
                .field(field_path(pointer)),
        );
    }

    /// Reports a field dropped on purpose, with the reason.
    pub fn dropped(&mut self, pointer: &str, why: &str) {
        self.warn(
            pointer,
            format!(
                "`{}` has no home in scar and was dropped",
                field_path(pointer)
            ),
            Some(why.to_owned()),
        );
    }

    /// Drops `key` from `map` when present, with the reason.
    pub fn drop_key(&mut self, map: &mut Map<String, Value>, base: &str, key: &str, why: &str) {
        if map.remove(key).is_some() {
            self.dropped(&child(base, key), why);
        }
    }

    /// Reports every key left in `map` as unknown to the importer.
    pub fn leftovers(&mut self, map: Map<String, Value>, base: &str) {
        for (k, _) in map {
            let p = child(base, &k);
            self.warn(
                &p,
                format!(
                    "`{}` is not a SCAR field scar knows; it was dropped",
                    field_path(&p)
                ),
                Some("check the spelling against SCAR's fdl-example.yaml".into()),
            );
        }
    }

    pub fn string(
        &mut self,
        map: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<String> {
        match map.remove(key)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                self.error(&child(base, key), format!("`{key}` should be a string"));
                None
            }
        }
    }

    pub fn uint(&mut self, map: &mut Map<String, Value>, base: &str, key: &str) -> Option<u32> {
        let v = map.remove(key)?;
        let n = match &v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n.and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None if v.is_null() => None,
            None => {
                self.error(
                    &child(base, key),
                    format!("`{key}` should be a whole number, found {v}"),
                );
                None
            }
        }
    }

    pub fn number(&mut self, map: &mut Map<String, Value>, base: &str, key: &str) -> Option<f64> {
        let v = map.remove(key)?;
        let n = match &v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if n.is_none() && !v.is_null() {
            self.error(
                &child(base, key),
                format!("`{key}` should be a number, found {v}"),
            );
        }
        n
    }

    pub fn boolean(&mut self, map: &mut Map<String, Value>, base: &str, key: &str) -> Option<bool> {
        match map.remove(key)? {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            Value::Null => None,
            other => {
                self.error(
                    &child(base, key),
                    format!("`{key}` should be true or false, found {other}"),
                );
                None
            }
        }
    }

    pub fn object(
        &mut self,
        map: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<Map<String, Value>> {
        match map.remove(key)? {
            Value::Object(m) => Some(m),
            Value::Null => None,
            _ => {
                self.error(&child(base, key), format!("`{key}` should be a mapping"));
                None
            }
        }
    }

    pub fn list(
        &mut self,
        map: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<Vec<Value>> {
        match map.remove(key)? {
            Value::Array(a) => Some(a),
            Value::Null => None,
            one @ (Value::String(_) | Value::Object(_)) => Some(vec![one]),
            _ => {
                self.error(&child(base, key), format!("`{key}` should be a list"));
                None
            }
        }
    }

    pub fn strings(
        &mut self,
        map: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        let items = self.list(map, base, key)?;
        Some(
            items
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
        )
    }

    /// A `{Variables: {K: V}}` block as string pairs.
    pub fn variables(
        &mut self,
        map: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Vec<(String, String, String)> {
        let Some(mut env) = self.object(map, base, key) else {
            return Vec::new();
        };
        let p = child(base, key);
        let vars = self.object(&mut env, &p, "Variables").unwrap_or_default();
        self.leftovers(env, &p);
        let vp = child(&p, "Variables");
        vars.into_iter()
            .filter_map(|(k, v)| {
                let at = child(&vp, &k);
                let s = match v {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => String::new(),
                    _ => {
                        self.error(&at, format!("variable `{k}` should be a string"));
                        return None;
                    }
                };
                Some((k, s, at))
            })
            .collect()
    }
}

/// The JSON pointer of `key` under `base`.
pub(crate) fn child(base: &str, key: &str) -> String {
    format!("{base}/{}", escape_segment(key))
}
