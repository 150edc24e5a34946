//! Stack checks: exactly one Stack, its name, role, account guard, tags and providers.

use crate::diag::{Diagnostic, Diagnostics};
use crate::manifest::load::ManifestSet;
use crate::manifest::names;

/// Tags AWS allows on a resource.
const MAX_TAGS: usize = 50;
/// Tags scar writes itself, at most (on a function): `scar:stack`, `scar:managed-by`,
/// `scar:address`, `scar:applied`, `scar:s3-invoke`, `scar:deletion-protection`, the seven that
/// record an assembled image and `scar:image`.
const SCAR_TAGS: usize = 14;

pub(super) fn check(set: &ManifestSet, out: &mut Diagnostics) {
    match set.stacks.as_slice() {
        [] => {
            // A Stack that failed its schema has already been reported.
            let rejected = set.rejected.contains(&crate::manifest::schema::Kind::Stack);
            if !rejected && !set.files.is_empty() {
                out.push(
                    Diagnostic::error(format!("no Stack manifest in {}", set.dir.display()))
                        .hint("add a file with `kind: Stack` naming the stack, region and role"),
                );
            }
        }
        [_] => {}
        [first, rest @ ..] => {
            for extra in rest {
                out.push(
                    Diagnostic::error("more than one Stack in the directory")
                        .at(extra.at("/kind"))
                        .field("kind")
                        .related(first.at("/kind"), "the first Stack is here")
                        .hint("one directory is one stack: move this one to its own directory"),
                );
            }
        }
    }
    for s in &set.stacks {
        let name = &s.value.metadata.name;
        if let Some(problem) = names::stack_name_problem(name) {
            out.push(
                Diagnostic::error(format!("invalid stack name `{name}`: {problem}"))
                    .at(s.at("/metadata/name"))
                    .field("metadata.name")
                    .hint("the stack name prefixes role, Batch and API names and tags"),
            );
        }
        let spec = &s.value.spec;
        let role = &spec.role;
        match (&role.arn, role.managed) {
            (Some(_), Some(true)) => out.push(
                Diagnostic::error("role sets both `arn` and `managed: true`")
                    .at(s.key_at("/spec/role"))
                    .field("spec.role")
                    .hint("use an existing role (`arn`) or let scar manage one, not both"),
            ),
            (None, None | Some(false)) => out.push(
                Diagnostic::error("role names neither an `arn` nor `managed: true`")
                    .at(s.key_at("/spec/role"))
                    .field("spec.role")
                    .hint("set `arn: arn:aws:iam::ACCOUNT:role/NAME` or `managed: true`"),
            ),
            _ => {}
        }
        if role.permissions_boundary.is_some() && role.managed != Some(true) {
            out.push(
                Diagnostic::error("permissionsBoundary applies only to a managed role")
                    .at(s.at("/spec/role/permissionsBoundary"))
                    .field("spec.role.permissionsBoundary"),
            );
        }
        if let (Some(account), Some(arn)) = (&spec.account_id, &role.arn)
            && let Some(role_account) = arn.split(':').nth(4)
            && role_account != account
        {
            out.push(
                Diagnostic::error(format!(
                    "role belongs to account {role_account}, but the stack is guarded to {account}"
                ))
                .at(s.at("/spec/role/arn"))
                .field("spec.role.arn")
                .related(s.at("/spec/accountId"), "the account guard is here"),
            );
        }
        check_tags(&spec.tags, 0, "/spec/tags", s, out);
        let providers = &spec.storage_providers;
        let ids = providers
            .s3
            .keys()
            .map(|k| ("s3", k))
            .chain(providers.minio.keys().map(|k| ("minio", k)))
            .chain(providers.webdav.keys().map(|k| ("webdav", k)))
            .chain(providers.onedata.keys().map(|k| ("onedata", k)));
        for (kind, id) in ids {
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                out.push(
                    Diagnostic::error(format!("invalid storage provider id `{id}`"))
                        .at(s.key_at(&format!("/spec/storageProviders/{kind}/{id}")))
                        .field(format!("spec.storageProviders.{kind}.{id}"))
                        .hint("use letters, digits, `-` and `_`"),
                );
            }
        }
        check_providers(s, providers, out);
    }
}

/// Providers the supervisor cannot write to, or would reach in a way that leaks credentials.
fn check_providers(
    s: &crate::manifest::Doc<crate::manifest::types::StackManifest>,
    providers: &crate::manifest::types::StorageProviders,
    out: &mut Diagnostics,
) {
    for id in providers.onedata.keys() {
        out.push(
            Diagnostic::error(format!("storage provider `onedata.{id}`: scar-supervisor does not write to Onedata"))
                .at(s.key_at(&format!("/spec/storageProviders/onedata/{id}")))
                .field(format!("spec.storageProviders.onedata.{id}"))
                .hint("declare the space through its WebDAV interface (`webdav`) or an S3-compatible gateway (`minio`), and point the outputs there"),
        );
    }
    for (id, p) in &providers.webdav {
        let url = crate::manifest::contract::webdav_url(&p.hostname);
        let pointer = format!("/spec/storageProviders/webdav/{id}/hostname");
        let field = format!("spec.storageProviders.webdav.{id}.hostname");
        match url.parse::<hyper::Uri>() {
            Ok(u) if u.host().is_some() => {
                let loopback = u.host().is_some_and(crate::text::is_loopback_ip);
                if u.scheme_str() == Some("http") && !loopback {
                    out.push(
                        Diagnostic::error(format!("`{}` sends the WebDAV password unencrypted", p.hostname))
                            .at(s.at(&pointer))
                            .field(field)
                            .hint("use https:// (or a bare host name, which means https); plain http is allowed only for a loopback address such as 127.0.0.1"),
                    );
                }
            }
            _ => out.push(
                Diagnostic::error(format!("`{}` is not a host name or URL", p.hostname))
                    .at(s.at(&pointer))
                    .field(field)
                    .hint(
                        "for example `dcache.example.org:2880` or `https://dav.example.org/data`",
                    ),
            ),
        }
    }
}

/// Checks user tags: reserved prefixes, lengths, and room for scar's own tags beside them and
/// `inherited` more (the Stack's tags a Function's resources carry too).
pub(super) fn check_tags<T>(
    tags: &std::collections::BTreeMap<String, String>,
    inherited: usize,
    pointer: &str,
    doc: &crate::manifest::Doc<T>,
    out: &mut Diagnostics,
) {
    let field = crate::manifest::load::field_path(pointer);
    for (k, v) in tags {
        let p = format!("{pointer}/{}", crate::manifest::yaml::escape_segment(k));
        let lower = k.to_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("scar:") {
            out.push(
                Diagnostic::error(format!("tag key `{k}` uses a reserved prefix"))
                    .at(doc.key_at(&p))
                    .field(format!("{field}.{k}"))
                    .hint("`aws:` belongs to AWS and `scar:` to scar's ownership tags"),
            );
        }
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            out.push(
                Diagnostic::error("tag keys are 1-128 characters and values at most 256")
                    .at(doc.key_at(&p))
                    .field(format!("{field}.{k}")),
            );
        }
    }
    let total = tags.len() + inherited;
    if total + SCAR_TAGS > MAX_TAGS {
        let counted = if inherited > 0 {
            format!(
                "{total} tags ({} here, {inherited} more from the Stack)",
                tags.len()
            )
        } else {
            format!("{total} tags")
        };
        out.push(
            Diagnostic::error(format!(
                "{counted} leave no room for the {SCAR_TAGS} tags scar writes on a function (AWS allows {MAX_TAGS})"
            ))
            .at(doc.key_at(pointer))
            .field(field)
            .hint(format!(
                "keep the Stack's and a Function's tags together at {} or fewer",
                MAX_TAGS - SCAR_TAGS
            )),
        );
    }
}
