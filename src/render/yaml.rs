//! A small YAML writer for JSON values, used by `scar import` to write manifests.
//!
//! Block style, keys in insertion order, `null`s and empty collections left out (an absent
//! optional field and a `null` one mean the same in scar manifests). Strings that YAML could
//! read as anything but the same string are written double-quoted with JSON escapes, which YAML
//! reads back exactly.

use serde_json::Value;

/// Writes `value` as a YAML document (no leading `---`).
#[must_use]
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(_) | Value::Array(_) => block(value, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter().filter(|(_, val)| !is_empty(val)) {
                out.push_str(&format!("{pad}{}:", key(k)));
                nested(val, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                match item {
                    Value::Object(m) if !is_empty(item) => {
                        // The first key goes on the dash line, the rest below it.
                        let mut first = true;
                        for (k, val) in m.iter().filter(|(_, val)| !is_empty(val)) {
                            if first {
                                out.push_str(&format!(" {}:", key(k)));
                                first = false;
                            } else {
                                out.push_str(&format!("{pad}  {}:", key(k)));
                            }
                            nested(val, indent + 2, out);
                        }
                    }
                    _ => nested(item, indent, out),
                }
            }
        }
        scalar => {
            out.push_str(&format!("{pad}{}\n", inline(scalar)));
        }
    }
}

fn nested(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(_) if !is_empty(val) => {
            out.push('\n');
            block(val, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(val, indent + 2, out);
        }
        Value::Array(_) => out.push_str(" []\n"),
        Value::Object(_) => out.push_str(" {}\n"),
        scalar => out.push_str(&format!(" {}\n", inline(scalar))),
    }
}

fn key(k: &str) -> String {
    if needs_quotes(k) {
        quoted(k)
    } else {
        k.to_owned()
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if needs_quotes(s) => quoted(s),
        Value::String(s) => s.clone(),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("invariant: a string always serialises")
}

/// True when a plain scalar would not read back as this same string.
fn needs_quotes(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE", "yes",
        "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
        ".inf", ".nan", "-.inf", "+.inf",
    ];
    let Some(first) = s.chars().next() else {
        return true;
    };
    WORDS.contains(&s)
        || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_the_reader() {
        let v = json!({
            "a": "plain", "b": "yes", "c": "012", "d": ": x", "e": 5, "f": true,
            "g": ["x", {"k": "v", "l": [1, 2]}, {"m": {"n": "o"}}],
            "h": {"i": {"j": "k"}}, "p": "multi\nline", "q": "", "r": "a: b",
            "s": "-dash", "t": "s3:ObjectCreated:*"
        });
        let text = to_yaml(&v);
        let docs = crate::manifest::yaml::parse(&text).expect("reads back");
        let (back, _) = crate::manifest::yaml::to_json(&docs[0].root);
        assert_eq!(back, v, "\n{text}");
    }

    #[test]
    fn leaves_out_nulls_and_empty_collections() {
        let v = json!({"a": null, "b": [], "c": {}, "d": {"e": null}, "f": 1});
        assert_eq!(to_yaml(&v), "f: 1\n");
    }
}
