//! Tag keys scar writes on everything it creates, and the tags a resource gets.

use std::collections::BTreeMap;

use super::Address;

/// The stack that owns the resource.
pub const STACK: &str = "scar:stack";
/// Always `scar`.
pub const MANAGED_BY: &str = "scar:managed-by";
/// The resource's address in its stack.
pub const ADDRESS: &str = "scar:address";
/// On a global resource (the managed IAM role): the region of the stack that owns it. A
/// stack of the same name in another region is another stack (its lock is another).
pub const REGION: &str = "scar:region";
/// On a function: `true` when it has S3 triggers or an HTTP endpoint (so its resource
/// policy holds scar statements). A plan reads the policy (`GetPolicy`, 15 req/s) only of
/// functions that have such statements now or had them at the last apply.
pub const S3_INVOKE: &str = "scar:s3-invoke";
/// On a function with a failure policy (`onFailure`): `true`. A plan reads the policy
/// (`GetFunctionEventInvokeConfig`) only of functions that have one now or had one at the
/// last apply, so that one the manifest no longer sets is removed.
pub const INVOKE_CONFIG: &str = "scar:invoke-config";
/// On a function with `deletionProtection: true`: a plan that would delete or replace it
/// is an error, whatever the manifests say now (the manifest may be gone).
pub const DELETION_PROTECTION: &str = "scar:deletion-protection";
/// On a function `scar pause` holds: when it was paused (RFC 3339). A plan keeps the hold
/// (a reserved concurrency of 0) instead of healing it; `scar resume` lifts it.
pub const PAUSED: &str = "scar:paused";
/// On such a function: its reserved concurrency before the pause (`none` when it had none),
/// which `scar resume` puts back unless the manifest sets one.
pub const PAUSED_CONCURRENCY: &str = "scar:paused-concurrency";
/// On a function with an assembled image: the supervisor version inside it.
pub const SUPERVISOR: &str = "scar:supervisor";
/// On such a function: the base image as the manifest names it.
pub const IMAGE_BASE: &str = "scar:image-base";
/// The digest that base resolved to when the image was built.
pub const IMAGE_BASE_DIGEST: &str = "scar:image-base-digest";
/// The image's architecture (`amd64`, `arm64`).
pub const IMAGE_ARCHITECTURE: &str = "scar:image-architecture";
/// The digest of the script inside.
pub const IMAGE_SCRIPT: &str = "scar:image-script";
/// The digest of the configuration inside.
pub const IMAGE_CONFIG: &str = "scar:image-config";
/// The repository the image is in.
pub const IMAGE_REPOSITORY: &str = "scar:image-repository";

/// The image scar deployed (`<repository uri>@<digest>`): what the function must run. A
/// function whose live image is another (an out-of-band `UpdateFunctionCode`) has drifted.
pub const IMAGE_DEPLOYED: &str = "scar:image";

/// The tags that record a function's assembled image, with the `function_image`
/// attribute each one holds.
pub const IMAGE_RECORD: [(&str, &str); 7] = [
    (IMAGE_REPOSITORY, "repository"),
    (IMAGE_BASE, "base"),
    (IMAGE_BASE_DIGEST, "base_digest"),
    (IMAGE_ARCHITECTURE, "architecture"),
    (SUPERVISOR, "supervisor"),
    (IMAGE_SCRIPT, "script_sha256"),
    (IMAGE_CONFIG, "config_sha256"),
];

/// The tags scar writes on a resource of `stack` at `address`, user tags first.
#[must_use]
pub fn ownership_tags(
    stack: &str,
    address: &Address,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = user.clone();
    t.insert(STACK.into(), stack.into());
    t.insert(MANAGED_BY.into(), "scar".into());
    t.insert(ADDRESS.into(), address.to_string());
    t
}

/// The stack's tags under a function's own (the function's win).
#[must_use]
pub fn merged(
    stack: &crate::manifest::types::StackSpec,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut t = stack.tags.clone();
    t.extend(own.clone());
    t
}
