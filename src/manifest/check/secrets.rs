//! Secrets live in SSM or Secrets Manager, never in a manifest: literal values that look like
//! secrets are errors, and every secret reference must name exactly one store.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, Diagnostics};
use crate::manifest::load::{Doc, ManifestSet};
use crate::manifest::types::{EnvValue, SecretRef};
use crate::manifest::yaml::escape_segment;

/// Words in a variable name that mark its value as a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "PRIVATE_KEY",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "CREDENTIAL",
];

/// Name endings that say the value is a location or an identifier, not the secret itself.
const LOCATOR_ENDINGS: &[&str] = &[
    "_ARN",
    "_URL",
    "_URI",
    "_PATH",
    "_FILE",
    "_NAME",
    "_ENDPOINT",
    "_ID",
    "_HEADER",
];

pub(super) fn check(set: &ManifestSet, out: &mut Diagnostics) {
    for f in &set.functions {
        env(f, &f.value.spec.environment, "/spec/environment", out);
        if let Some(b) = &f.value.spec.batch {
            env(f, &b.environment, "/spec/batch/environment", out);
        }
    }
    for s in &set.stacks {
        let d = &s.value.spec.defaults;
        env(s, &d.environment, "/spec/defaults/environment", out);
        if let Some(b) = &d.batch {
            env(s, &b.environment, "/spec/defaults/batch/environment", out);
        }
        let sp = &s.value.spec.storage_providers;
        let base = "/spec/storageProviders";
        for (id, p) in &sp.s3 {
            let at = format!("{base}/s3/{}", escape_segment(id));
            reference(s, &p.access_key, &format!("{at}/accessKey"), out);
            reference(s, &p.secret_key, &format!("{at}/secretKey"), out);
        }
        for (id, p) in &sp.minio {
            let at = format!("{base}/minio/{}", escape_segment(id));
            reference(s, &p.access_key, &format!("{at}/accessKey"), out);
            reference(s, &p.secret_key, &format!("{at}/secretKey"), out);
        }
        for (id, p) in &sp.webdav {
            let at = format!("{base}/webdav/{}", escape_segment(id));
            reference(s, &p.password, &format!("{at}/password"), out);
        }
        for (id, p) in &sp.onedata {
            let at = format!("{base}/onedata/{}", escape_segment(id));
            reference(s, &p.token, &format!("{at}/token"), out);
        }
    }
}

fn env<T>(doc: &Doc<T>, vars: &BTreeMap<String, EnvValue>, base: &str, out: &mut Diagnostics) {
    for (k, v) in vars {
        let pointer = format!("{base}/{}", escape_segment(k));
        let field = crate::manifest::load::field_path(&pointer);
        // A NUL would end the value (a process's environment is C strings) and, where a
        // sandbox reads NUL-separated arguments, start another argument.
        if k.chars().any(char::is_control) {
            // The name as Rust writes a string: a control character shown, not printed.
            let shown = format!("{base}/{}", escape_segment(&format!("{k:?}")));
            out.push(
                Diagnostic::error(format!(
                    "the environment variable name {k:?} holds a control character"
                ))
                .at(doc.key_at(&pointer))
                .field(crate::manifest::load::field_path(&shown))
                .hint("names use letters, digits and `_`"),
            );
            continue;
        }
        if matches!(v, EnvValue::Literal(s) if s.chars().any(crate::text::unsafe_in_env_value)) {
            out.push(
                Diagnostic::error(format!(
                    "environment variable `{k}` holds a control character"
                ))
                .at(doc.at(&pointer))
                .field(field)
                .hint("a value may hold tabs and line breaks, not NUL or other control characters"),
            );
            continue;
        }
        match v {
            EnvValue::Secret(s) => {
                reference(doc, &s.secret_ref, &format!("{pointer}/secretRef"), out)
            }
            EnvValue::Literal(value) => {
                if let Some(why) = literal_secret(k, value) {
                    out.push(
                        Diagnostic::error(format!("`{k}` holds a literal secret ({why})"))
                            .at(doc.at(&pointer))
                            .field(field)
                            .hint("store it in SSM or Secrets Manager and write `secretRef: {ssm: /path/to/param}`"),
                    );
                }
            }
        }
    }
}

/// True for a URL that carries a password (`scheme://user:password@host`).
#[must_use]
pub fn url_with_password(value: &str) -> bool {
    crate::text::url_parts(value).is_some_and(|(_, userinfo, _, _)| {
        userinfo
            .and_then(|u| u.split_once(':'))
            .is_some_and(|(_, p)| !p.is_empty())
    })
}

/// Why a literal value looks like a secret, if it does.
#[must_use]
pub fn literal_secret(name: &str, value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    let is_key_id = |v: &str| {
        v.len() == 20
            && (v.starts_with("AKIA") || v.starts_with("ASIA"))
            && v.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(is_key_id)
    {
        return Some("an AWS access key id");
    }
    if value.contains("PRIVATE KEY-----") {
        return Some("a private key");
    }
    if url_with_password(value) {
        return Some("a URL with a password in it");
    }
    if ["ghp_", "github_pat_", "xoxb-", "xoxp-", "sk_live_"]
        .iter()
        .any(|p| value.starts_with(p))
    {
        return Some("an access token");
    }
    let upper = name.to_uppercase();
    let named_secret = SECRET_WORDS.iter().any(|w| upper.contains(w))
        && !LOCATOR_ENDINGS.iter().any(|e| upper.ends_with(e));
    named_secret.then_some("its name marks it as one")
}

fn reference<T>(doc: &Doc<T>, r: &SecretRef, pointer: &str, out: &mut Diagnostics) {
    let field = crate::manifest::load::field_path(pointer);
    match (&r.ssm, &r.secrets_manager) {
        (Some(_), Some(_)) | (None, None) => out.push(
            Diagnostic::error("a secret reference names exactly one of `ssm` and `secretsManager`")
                .at(doc.key_at(pointer))
                .field(field.clone()),
        ),
        (Some(_), None) if r.key.is_some() => out.push(
            Diagnostic::error(
                "`key` selects a JSON field of a Secrets Manager secret; SSM has none",
            )
            .at(doc.at(&format!("{pointer}/key")))
            .field(format!("{field}.key")),
        ),
        _ => {}
    }
    // The reference becomes a Resource of the managed role's policy: a wildcard there would
    // grant every matching parameter or secret of the account.
    for (name, value) in [("ssm", &r.ssm), ("secretsManager", &r.secrets_manager)] {
        if let Some(v) = value
            && v.contains(['*', '?'])
        {
            out.push(
                Diagnostic::error(format!(
                    "`{v}` is a wildcard; a secret reference names one parameter or secret"
                ))
                .at(doc.at(&format!("{pointer}/{name}")))
                .field(format!("{field}.{name}"))
                .hint("the managed role may read exactly the secrets the manifests name"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::literal_secret;

    #[test]
    fn names_and_values_that_mark_secrets() {
        assert!(literal_secret("DB_PASSWORD", "hunter2").is_some());
        assert!(literal_secret("CONFIG", "AKIAABCDEFGHIJKLMNOP").is_some());
        assert!(literal_secret("TOKEN_URL", "https://auth.example.org").is_none());
        assert!(literal_secret("SECRET_ARN", "arn:aws:secretsmanager:...").is_none());
        assert!(literal_secret("OUTPUT_FORMAT", "png").is_none());
        assert!(literal_secret("API_TOKEN", "").is_none());
        assert!(literal_secret("DATABASE", "postgres://app:hunter2@db:5432/x").is_some());
        assert!(literal_secret("DATABASE", "postgres://app@db:5432/x").is_none());
        assert!(literal_secret("SITE", "https://example.org/a:b@c").is_none());
    }
}
