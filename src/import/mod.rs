//! `scar import`: a SCAR 4.x function definition file (FDL) becomes a stack directory.
//!
//! One Stack (name, region, role from `iam.role`), one Function per `functions.aws[]` item,
//! scripts copied next to the manifests, and a Workflow when functions chain through S3.
//! Credentials never reach a manifest: they become secret references, with a warning naming
//! the parameter to create. Fields with no home in scar are reported, never silently dropped.

mod fdl;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, Location};
use crate::manifest::check::literal_secret;

/// Words of a variable's name (split at `_`) that make import treat its value as a credential:
/// wider than `scar validate`'s rule, since a value wrongly moved to SSM costs a warning and a
/// credential wrongly copied lands in a repository.
const CREDENTIAL_WORDS: &[&str] = &[
    "PASS",
    "PASSWD",
    "PASSWORD",
    "PWD",
    "TOKEN",
    "KEY",
    "SECRET",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTH",
];

/// Last words of a name that say the value only locates or names something.
const NAME_ENDINGS: &[&str] = &[
    "ARN", "URL", "URI", "PATH", "FILE", "DIR", "NAME", "ID", "PREFIX", "SUFFIX", "BUCKET",
    "REGION", "FORMAT", "TYPE", "LENGTH", "SIZE",
];

/// True when import should not copy `value` of variable `name` into a manifest: its name has
/// a credential word (`DB_PASS`, `GITHUB_TOKEN`), it is a URL with a password
/// (`postgres://u:p@host`), or it looks random enough to be a key.
fn imported_secret(name: &str, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let upper = name.to_uppercase();
    let words: Vec<&str> = upper.split(['_', '-']).filter(|w| !w.is_empty()).collect();
    let named = words
        .iter()
        .any(|w| CREDENTIAL_WORDS.contains(w) || w.contains("PASSWORD") || w.contains("SECRET"))
        && !words.last().is_some_and(|w| NAME_ENDINGS.contains(w));
    named || crate::manifest::check::url_with_password(value) || looks_random(value)
}

/// A long value with no spaces whose characters are spread like a key's (Shannon entropy of at
/// least 4 bits per character, three kinds of characters), and which is not a path or URL.
fn looks_random(value: &str) -> bool {
    if value.len() < 24
        || value.contains(char::is_whitespace)
        || value.starts_with('/')
        || value.contains("://")
        || value.starts_with("arn:")
    {
        return false;
    }
    let kinds = [
        value.bytes().any(|b| b.is_ascii_lowercase()),
        value.bytes().any(|b| b.is_ascii_uppercase()),
        value.bytes().any(|b| b.is_ascii_digit()),
        value.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0u32) += 1;
    }
    let n = f64::from(u32::try_from(value.chars().count()).unwrap_or(u32::MAX));
    let entropy: f64 = counts
        .values()
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    kinds >= 3 && entropy >= 4.0
}
use crate::manifest::types::*;
use crate::manifest::yaml;
use fdl::{Reader, child};

/// What the importer produced: files to write and what it has to say.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The stack name chosen.
    pub stack: String,
    /// Files to write, relative to the output directory.
    pub files: Vec<(PathBuf, Contents)>,
    /// Warnings (dropped fields, secrets to set) and errors.
    pub diagnostics: Diagnostics,
    /// Where the FDL holds credentials: [`redacted`] blanks them before its lines are shown.
    pub redact: Vec<crate::diag::Span>,
}

/// `text` with every span in `spans` overwritten by `*`, character for character (so every
/// other span still points where it did): the FDL as shown in import's messages.
#[must_use]
pub fn redacted(text: &str, spans: &[crate::diag::Span]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for s in spans {
        for c in chars.iter_mut().skip(s.offset).take(s.len) {
            if !c.is_whitespace() {
                *c = '*';
            }
        }
    }
    chars.into_iter().collect()
}

/// The content of an output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// Text to write.
    Text(String),
    /// A file to copy.
    Copy(PathBuf),
}

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stack name; default derived from the file name.
    pub stack: Option<String>,
    /// Region when the FDL gives none; default `us-east-1`.
    pub region: Option<String>,
}

/// A stack name from a file name: lowercase letters, digits and single dashes, at most 32.
#[must_use]
pub fn stack_name_from(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name = String::new();
    for c in stem.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_matches('-').chars().take(32).collect();
    let name = name.trim_end_matches('-').to_owned();
    if name.is_empty() {
        "imported".into()
    } else {
        name
    }
}

/// Converts FDL text into a stack. `path` locates messages and relative script paths.
#[must_use]
pub fn convert(path: &Path, text: &str, opts: &Options) -> Imported {
    let stack_name = opts.stack.clone().unwrap_or_else(|| stack_name_from(path));
    let mut imported = Imported {
        stack: stack_name.clone(),
        ..Imported::default()
    };
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            imported.diagnostics.push(
                Diagnostic::error(format!("invalid YAML: {}", e.message)).at(Location {
                    file: path.to_path_buf(),
                    span: Some(e.span),
                }),
            );
            return imported;
        }
    };
    let Some(doc) = docs.first() else {
        imported
            .diagnostics
            .push(
                Diagnostic::error("the file holds no YAML document").at(Location {
                    file: path.to_path_buf(),
                    span: None,
                }),
            );
        return imported;
    };
    let (value, spans) = yaml::to_json(&doc.root);
    let mut r = Reader {
        path,
        spans,
        diags: Diagnostics::default(),
        redact: Vec::new(),
    };
    let mut s = StackBuilder::new(stack_name, path.parent().unwrap_or(Path::new(".")));
    match value {
        Value::Object(mut root) => {
            if let Some(mut providers) = r.object(&mut root, "", "storage_providers") {
                s.storage_providers(&mut r, &mut providers);
                r.leftovers(providers, "/storage_providers");
            }
            match r.object(&mut root, "", "functions") {
                Some(mut functions) => {
                    for (i, item) in r
                        .list(&mut functions, "/functions", "aws")
                        .unwrap_or_default()
                        .into_iter()
                        .enumerate()
                    {
                        let base = format!("/functions/aws/{i}");
                        match item {
                            Value::Object(m) => s.function(&mut r, m, &base),
                            _ => r.error(&base, "a `functions.aws` item should be a mapping"),
                        }
                    }
                    r.drop_key(
                        &mut functions,
                        "/functions",
                        "oscar",
                        "scar deploys to AWS only; OSCAR services stay with SCAR/OSCAR tooling",
                    );
                    r.leftovers(functions, "/functions");
                }
                None => r.error(
                    "",
                    "no `functions` block: this is not a SCAR function definition file",
                ),
            }
            r.leftovers(root, "");
        }
        _ => r.error(
            "",
            "a SCAR function definition file is a mapping with `functions`",
        ),
    }
    if s.functions.is_empty() && !r.diags.has_errors() {
        r.error("", "no `functions.aws` items to import");
    }
    let region = s
        .region
        .clone()
        .or_else(|| opts.region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    imported.files = s.finish(&mut r, region);
    imported.diagnostics = r.diags;
    imported.redact = r.redact;
    imported
}

/// Writes an import's files below `out`.
///
/// # Errors
/// When `out` is a non-empty directory and `force` is false, or on any I/O error.
pub fn write(imported: &Imported, out: &Path, force: bool) -> std::io::Result<()> {
    if out.exists() && !force && std::fs::read_dir(out)?.next().is_some() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} is not empty (pass --force to write into it)",
                out.display()
            ),
        ));
    }
    for (rel, contents) in &imported.files {
        let dest = out.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match contents {
            Contents::Text(t) => std::fs::write(&dest, t)?,
            Contents::Copy(src) => {
                std::fs::copy(src, &dest)?;
            }
        }
    }
    Ok(())
}

struct Function {
    manifest: FunctionManifest,
}

struct StackBuilder<'a> {
    name: String,
    fdl_dir: &'a Path,
    region: Option<String>,
    role: Option<String>,
    providers: StorageProviders,
    functions: Vec<Function>,
    scripts: BTreeMap<String, PathBuf>,
    copies: Vec<(PathBuf, Contents)>,
}

const WHY_PROFILE: &str = "pass --profile or set AWS_PROFILE when running scar";
const WHY_REGION: &str = "a scar stack has one region, set in the Stack";
/// Storage providers scar-supervisor does not write to.
const UNWRITABLE: [&str; 2] = ["onedata", "rucio"];
const WHY_UNWRITABLE: &str = "scar-supervisor writes to S3, MinIO and WebDAV only; reach a Onedata space through its WebDAV interface (a `webdav` provider)";

impl<'a> StackBuilder<'a> {
    fn new(name: String, fdl_dir: &'a Path) -> Self {
        Self {
            name,
            fdl_dir,
            region: None,
            role: None,
            providers: StorageProviders::default(),
            functions: Vec::new(),
            scripts: BTreeMap::new(),
            copies: Vec::new(),
        }
    }

    fn secret(&self, r: &mut Reader, pointer: &str, parameter: String) -> SecretRef {
        if let Some(span) = r.spans.value(pointer) {
            r.redact.push(span);
        }
        r.warn(
            pointer,
            format!("a credential was turned into the secret reference `ssm: {parameter}`"),
            Some(format!(
                "create the SSM SecureString parameter {parameter} with the value from this line; the value was not copied"
            )),
        );
        SecretRef {
            ssm: Some(parameter),
            ..SecretRef::default()
        }
    }

    fn storage_providers(&mut self, r: &mut Reader, providers: &mut Map<String, Value>) {
        let base = "/storage_providers";
        let prefix = format!("/scar/{}/storage", self.name);
        for kind in ["s3", "minio", "webdav"] {
            let Some(entries) = r.object(providers, base, kind) else {
                continue;
            };
            for (id, v) in entries {
                let p = child(&child(base, kind), &id);
                let Value::Object(mut m) = v else {
                    r.error(&p, "a storage provider should be a mapping");
                    continue;
                };
                let param = |f: &str| format!("{prefix}/{kind}/{id}/{f}");
                let cred = |r: &mut Reader, m: &mut Map<String, Value>, key: &str| {
                    m.remove(key);
                    self.secret(r, &child(&p, key), param(key))
                };
                match kind {
                    "s3" => {
                        let access_key = cred(r, &mut m, "access_key");
                        let secret_key = cred(r, &mut m, "secret_key");
                        let region = r.string(&mut m, &p, "region");
                        self.providers.s3.insert(
                            id.clone(),
                            S3Provider {
                                region,
                                access_key,
                                secret_key,
                            },
                        );
                    }
                    "minio" => {
                        let access_key = cred(r, &mut m, "access_key");
                        let secret_key = cred(r, &mut m, "secret_key");
                        let endpoint = r.string(&mut m, &p, "endpoint").unwrap_or_default();
                        let verify = r.boolean(&mut m, &p, "verify");
                        let region = r.string(&mut m, &p, "region");
                        self.providers.minio.insert(
                            id.clone(),
                            MinioProvider {
                                endpoint,
                                verify,
                                region,
                                access_key,
                                secret_key,
                            },
                        );
                    }
                    _ => {
                        let password = cred(r, &mut m, "password");
                        let hostname = r.string(&mut m, &p, "hostname").unwrap_or_default();
                        let login = r.string(&mut m, &p, "login").unwrap_or_default();
                        self.providers.webdav.insert(
                            id.clone(),
                            WebdavProvider {
                                hostname,
                                login,
                                password,
                            },
                        );
                    }
                }
                r.leftovers(m, &p);
            }
        }
        for kind in UNWRITABLE {
            r.drop_key(providers, base, kind, WHY_UNWRITABLE);
        }
    }

    fn note_region(&mut self, r: &mut Reader, pointer: &str, region: Option<String>) {
        let Some(region) = region else { return };
        match &self.region {
            None => self.region = Some(region),
            Some(have) if *have != region => r.warn(
                pointer,
                format!("region {region} differs from the stack's {have}; the stack's is used"),
                Some(WHY_REGION.into()),
            ),
            Some(_) => {}
        }
    }

    /// Per-service blocks SCAR carries only for region and profile.
    fn service_block(
        &mut self,
        r: &mut Reader,
        item: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<Map<String, Value>> {
        let mut m = r.object(item, base, key)?;
        let p = child(base, key);
        let region = r.string(&mut m, &p, "region");
        self.note_region(r, &child(&p, "region"), region);
        r.drop_key(&mut m, &p, "boto_profile", WHY_PROFILE);
        Some(m)
    }

    fn env(
        &self,
        r: &mut Reader,
        function: &str,
        vars: Vec<(String, String, String)>,
        into: &mut BTreeMap<String, EnvValue>,
    ) {
        for (k, v, at) in vars {
            if crate::manifest::check::is_reserved_env(&k) {
                if (literal_secret(&k, &v).is_some() || imported_secret(&k, &v))
                    && let Some(span) = r.spans.value(&at)
                {
                    r.redact.push(span);
                }
                r.warn(
                    &at,
                    format!("`{k}` is reserved by Lambda or the supervisor and was dropped (its value was not copied)"),
                    Some(if k.starts_with("AWS_") {
                        "grant the function's role the access these credentials gave".to_owned()
                    } else {
                        "rename the variable in the script and set it under the new name".to_owned()
                    }),
                );
                continue;
            }
            let value = if literal_secret(&k, &v).is_some() || imported_secret(&k, &v) {
                let param = format!("/scar/{}/{function}/{k}", self.name);
                EnvValue::Secret(SecretEnv {
                    secret_ref: self.secret(r, &at, param),
                })
            } else {
                EnvValue::Literal(v)
            };
            if into.insert(k.clone(), value).is_some() {
                r.warn(
                    &at,
                    format!("`{k}` is set twice (Lambda and container environment); this one wins"),
                    None,
                );
            }
        }
    }

    fn function(&mut self, r: &mut Reader, mut item: Map<String, Value>, base: &str) {
        let lp = child(base, "lambda");
        let Some(mut l) = r.object(&mut item, base, "lambda") else {
            r.error(base, "a `functions.aws` item needs a `lambda` block");
            return;
        };
        let Some(name) = r.string(&mut l, &lp, "name") else {
            r.error(&lp, "`lambda.name` is required");
            return;
        };
        let region = r.string(&mut l, &lp, "region");
        self.note_region(r, &child(&lp, "region"), region);
        r.drop_key(&mut l, &lp, "boto_profile", WHY_PROFILE);
        let mut spec = FunctionSpec {
            image: String::new(),
            prebuilt: None,
            script: None,
            description: r.string(&mut l, &lp, "description"),
            memory: r.uint(&mut l, &lp, "memory"),
            timeout: r.uint(&mut l, &lp, "timeout"),
            ephemeral_storage: None,
            architecture: None,
            timeout_threshold: r.uint(&mut l, &lp, "timeout_threshold"),
            role: None,
            environment: BTreeMap::new(),
            input: Vec::new(),
            output: Vec::new(),
            execution: None,
            batch: None,
            http: None,
            logs: None,
            vpc: None,
            file_systems: Vec::new(),
            tags: BTreeMap::new(),
            reserved_concurrency: None,
            on_failure: None,
            deletion_protection: None,
            ignore_changes: Vec::new(),
        };
        self.lambda_options(r, &mut l, &lp, &name, &mut spec);
        self.container(r, &mut l, &lp, &name, &mut spec);
        storage(r, &mut l, &lp, &mut spec);
        r.leftovers(l, &lp);

        self.services(r, &mut item, base, &name, &mut spec);
        r.leftovers(item, base);
        self.functions.push(Function {
            manifest: FunctionManifest {
                api_version: ApiVersion::V1Alpha1,
                kind: FunctionKind::Function,
                metadata: Metadata {
                    name,
                    labels: BTreeMap::new(),
                },
                spec,
            },
        });
    }

    /// The `lambda` block's options beyond name and sizes: architecture, VPC, EFS, environment,
    /// execution mode, log level and script; SCAR-only fields are reported as dropped.
    fn lambda_options(
        &mut self,
        r: &mut Reader,
        l: &mut Map<String, Value>,
        lp: &str,
        name: &str,
        spec: &mut FunctionSpec,
    ) {
        if let Some(rt) = r.string(l, lp, "runtime")
            && rt != "image"
        {
            r.dropped(&child(lp, "runtime"), &format!("`{rt}` ran the image through udocker; scar always deploys the container image itself"));
        }
        if let Some(archs) = r.strings(l, lp, "architectures") {
            spec.architecture = match archs.first().map(String::as_str) {
                Some("arm64") => Some(Architecture::Arm64),
                Some("x86_64") | None => Some(Architecture::X86_64),
                Some(other) => {
                    r.error(
                        &child(lp, "architectures"),
                        format!("unknown architecture `{other}`"),
                    );
                    None
                }
            };
        }
        if let Some(mut vpc) = r.object(l, lp, "vpc") {
            let p = child(lp, "vpc");
            spec.vpc = Some(VpcSpec {
                subnets: r.strings(&mut vpc, &p, "SubnetIds").unwrap_or_default(),
                security_groups: r
                    .strings(&mut vpc, &p, "SecurityGroupIds")
                    .unwrap_or_default(),
            });
            r.leftovers(vpc, &p);
        }
        for (i, fs) in r
            .list(l, lp, "file_system")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let p = format!("{lp}/file_system/{i}");
            if let Value::Object(mut m) = fs {
                let arn = r.string(&mut m, &p, "Arn").unwrap_or_default();
                let mount_path = r.string(&mut m, &p, "LocalMountPath").unwrap_or_default();
                spec.file_systems.push(FileSystemSpec { arn, mount_path });
                r.leftovers(m, &p);
            }
        }
        r.drop_key(l, lp, "layers", "Lambda does not allow layers on container-image functions; put the files into the image");
        let lambda_env = r.variables(l, lp, "environment");
        self.env(r, name, lambda_env, &mut spec.environment);
        if let Some(mode) = r.string(l, lp, "execution_mode") {
            spec.execution = match mode.as_str() {
                "lambda" => Some(Execution::Lambda),
                "batch" => Some(Execution::Batch),
                "lambda-batch" => Some(Execution::LambdaBatch),
                other => {
                    r.error(
                        &child(lp, "execution_mode"),
                        format!("unknown execution_mode `{other}`"),
                    );
                    None
                }
            };
        }
        if let Some(level) = r.string(l, lp, "log_level") {
            let level = match level.to_uppercase().as_str() {
                "CRITICAL" => Some(LogLevel::Critical),
                "ERROR" => Some(LogLevel::Error),
                "WARNING" => Some(LogLevel::Warning),
                "INFO" => Some(LogLevel::Info),
                "DEBUG" => Some(LogLevel::Debug),
                _ => {
                    r.error(
                        &child(lp, "log_level"),
                        format!("unknown log_level `{level}`"),
                    );
                    None
                }
            };
            spec.logs = Some(LogsSpec {
                retention_days: None,
                level,
            });
        }
        if let Some(script) = r.string(l, lp, "init_script") {
            spec.script = self.script(r, name, &script, &child(lp, "init_script"));
        }
        r.drop_key(
            l,
            lp,
            "run_script",
            "a run script is sent at invocation time: pass it to `scar invoke`",
        );
        r.drop_key(
            l,
            lp,
            "extra_payload",
            "the zip runtime is gone: copy the files into the image",
        );
        for key in ["asynchronous", "invocation_type", "log_type"] {
            r.drop_key(
                l,
                lp,
                key,
                "an invocation option, not part of the deployment: pass it to `scar invoke`",
            );
        }
        r.drop_key(
            l,
            lp,
            "preheat",
            "scar does not invoke on deploy; run `scar invoke` after apply if a warm start matters",
        );
        r.drop_key(
            l,
            lp,
            "deployment",
            "the zip runtime and its deployment bucket are gone: scar deploys container images",
        );
        r.drop_key(
            l,
            lp,
            "supervisor",
            "scar ships its own supervisor; its version is scar's and shows in plans",
        );
        for key in ["handler", "tags", "arn", "config_path", "c_args", "payload"] {
            r.drop_key(
                l,
                lp,
                key,
                "SCAR derives this field itself; scar has its own tags and names",
            );
        }
    }

    /// The `lambda.container` block: the image, its environment and whether scar assembles it.
    fn container(
        &mut self,
        r: &mut Reader,
        l: &mut Map<String, Value>,
        lp: &str,
        name: &str,
        spec: &mut FunctionSpec,
    ) {
        if let Some(mut c) = r.object(l, lp, "container") {
            let cp = child(lp, "container");
            spec.image = r.string(&mut c, &cp, "image").unwrap_or_default();
            let container_env = r.variables(&mut c, &cp, "environment");
            self.env(r, name, container_env, &mut spec.environment);
            if let Some(t) = r.uint(&mut c, &cp, "timeout_threshold") {
                spec.timeout_threshold = Some(t);
            }
            if r.boolean(&mut c, &cp, "create_image") == Some(false) {
                if spec.image.contains(".dkr.ecr.") {
                    spec.prebuilt = Some(true);
                } else {
                    r.warn(&child(&cp, "create_image"), "`create_image: false` applies only to ECR images; scar will assemble this one", None);
                }
            }
            r.drop_key(&mut c, &cp, "image_file", "udocker image tarballs are gone: push the image to a registry and name it in `image`");
            r.drop_key(
                &mut c,
                &cp,
                "alpine",
                "scar's supervisor is a static binary that runs on any base image",
            );
            r.leftovers(c, &cp);
        }
        if spec.image.is_empty() {
            r.error(lp, format!("function `{name}` names no `container.image`"));
        }
    }

    /// The function's blocks beside `lambda`: `iam`, `api_gateway`, `cloudwatch`, `batch`,
    /// `ecr` and `s3`.
    fn services(
        &mut self,
        r: &mut Reader,
        item: &mut Map<String, Value>,
        base: &str,
        name: &str,
        spec: &mut FunctionSpec,
    ) {
        if let Some(mut iam) = r.object(item, base, "iam") {
            let p = child(base, "iam");
            if let Some(role) = r.string(&mut iam, &p, "role").filter(|s| !s.is_empty()) {
                match &self.role {
                    None => self.role = Some(role),
                    Some(have) if *have != role => spec.role = Some(role),
                    Some(_) => {}
                }
            }
            r.drop_key(&mut iam, &p, "boto_profile", WHY_PROFILE);
            r.drop_key(&mut iam, &p, "account_id", "derived from the role ARN");
            r.leftovers(iam, &p);
        }
        if let Some(mut api) = self.service_block(r, item, base, "api_gateway") {
            let p = child(base, "api_gateway");
            let name = r.string(&mut api, &p, "name");
            let stage = r.string(&mut api, &p, "stage_name");
            if name.is_some() {
                spec.http = Some(HttpSpec {
                    name,
                    stage,
                    ..HttpSpec::default()
                });
            }
            for key in [
                "endpoint",
                "http_method",
                "method",
                "integration",
                "request_parameters",
                "path_part",
                "service_id",
                "source_arn_testing",
                "source_arn_invocation",
                "parameters",
                "data_binary",
                "json_data",
                "id",
                "resource_id",
            ] {
                r.drop_key(
                    &mut api,
                    &p,
                    key,
                    "scar builds the REST API itself ({proxy+} ANY, Lambda proxy, async header)",
                );
            }
            r.leftovers(api, &p);
        }
        if let Some(mut cw) = self.service_block(r, item, base, "cloudwatch") {
            let p = child(base, "cloudwatch");
            if let Some(days) = r.uint(&mut cw, &p, "log_retention_policy_in_days") {
                spec.logs
                    .get_or_insert_with(LogsSpec::default)
                    .retention_days = Some(days);
            }
            for key in ["log_stream_name", "request_id"] {
                r.drop_key(
                    &mut cw,
                    &p,
                    key,
                    "a `scar log` option: pass it to `scar logs`",
                );
            }
            r.leftovers(cw, &p);
        }
        if let Some(b) = self.service_block(r, item, base, "batch") {
            spec.batch = Some(self.batch(r, name, b, &child(base, "batch")));
        }
        if let Some(mut ecr) = r.object(item, base, "ecr") {
            let p = child(base, "ecr");
            r.drop_key(
                &mut ecr,
                &p,
                "delete_image",
                "scar owns the ECR repository it creates and prunes it with the stack",
            );
            r.leftovers(ecr, &p);
        }
        if let Some(s3) = self.service_block(r, item, base, "s3") {
            r.leftovers(s3, &child(base, "s3"));
        }
    }

    fn batch(
        &mut self,
        r: &mut Reader,
        function: &str,
        mut b: Map<String, Value>,
        p: &str,
    ) -> BatchSpec {
        let mut spec = BatchSpec {
            vcpus: r.number(&mut b, p, "vcpus"),
            memory: r.uint(&mut b, p, "memory"),
            gpu: r
                .boolean(&mut b, p, "enable_gpu")
                .and_then(|g| g.then_some(1)),
            ..BatchSpec::default()
        };
        let vars = r.variables(&mut b, p, "environment");
        self.env(r, function, vars, &mut spec.environment);
        if let Some(mut mn) = r.object(&mut b, p, "multi_node_parallel") {
            let mp = child(p, "multi_node_parallel");
            let enabled = r.boolean(&mut mn, &mp, "enabled").unwrap_or(false);
            let nodes = r.uint(&mut mn, &mp, "number_nodes");
            let main_node = r.uint(&mut mn, &mp, "main_node_index");
            if enabled {
                spec.multi_node = Some(MultiNodeSpec {
                    nodes: nodes.unwrap_or(10),
                    main_node,
                });
            }
            r.leftovers(mn, &mp);
        }
        let mut compute = ComputeSpec::default();
        if let Some(mut c) = r.object(&mut b, p, "compute_resources") {
            let cp = child(p, "compute_resources");
            let kind = r
                .string(&mut c, &cp, "type")
                .or_else(|| r.string(&mut c, &cp, "comp_type"));
            compute.kind = match kind.as_deref() {
                None => None,
                Some("EC2") => Some(ComputeType::Ec2),
                Some("SPOT") => Some(ComputeType::Spot),
                Some("FARGATE") => Some(ComputeType::Fargate),
                Some("FARGATE_SPOT") => Some(ComputeType::FargateSpot),
                Some(other) => {
                    r.error(
                        &child(&cp, "type"),
                        format!("unknown compute type `{other}`"),
                    );
                    None
                }
            };
            compute.min_vcpus = r.uint(&mut c, &cp, "min_v_cpus");
            compute.max_vcpus = r.uint(&mut c, &cp, "max_v_cpus");
            compute.desired_vcpus = r.uint(&mut c, &cp, "desired_v_cpus");
            compute.instance_types = r.strings(&mut c, &cp, "instance_types");
            compute.subnets = r.strings(&mut c, &cp, "subnets");
            compute.security_groups = r.strings(&mut c, &cp, "security_group_ids");
            compute.instance_role = self.templated(r, &mut c, &cp, "instance_role");
            r.drop_key(
                &mut c,
                &cp,
                "launch_template_name",
                "the supervisor is inside the image: no launch template is needed",
            );
            r.leftovers(c, &cp);
        }
        compute.service_role = self.templated(r, &mut b, p, "service_role");
        r.drop_key(
            &mut b,
            p,
            "state",
            "scar keeps its compute environment and queue ENABLED",
        );
        r.drop_key(
            &mut b,
            p,
            "type",
            "scar's compute environments are always MANAGED",
        );
        r.leftovers(b, p);
        if compute != ComputeSpec::default() {
            spec.compute = Some(compute);
        }
        spec
    }

    /// A role value; SCAR's `{account_id}` templates are dropped in favour of scar's defaults.
    fn templated(
        &mut self,
        r: &mut Reader,
        m: &mut Map<String, Value>,
        base: &str,
        key: &str,
    ) -> Option<String> {
        let v = r.string(m, base, key)?;
        if v.contains('{') {
            r.dropped(
                &child(base, key),
                "a SCAR template; scar's default (the same role) applies",
            );
            return None;
        }
        Some(v)
    }

    fn script(
        &mut self,
        r: &mut Reader,
        function: &str,
        script: &str,
        pointer: &str,
    ) -> Option<String> {
        let src = self.fdl_dir.join(script);
        if !src.is_file() {
            r.error(
                pointer,
                format!(
                    "script `{script}` not found next to the FDL ({})",
                    src.display()
                ),
            );
            return None;
        }
        let base = Path::new(script)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script.sh".into());
        let mut rel = format!("scripts/{base}");
        if self.scripts.get(&rel).is_some_and(|have| *have != src) {
            rel = format!("scripts/{function}-{base}");
        }
        if !self.scripts.contains_key(&rel) {
            self.scripts.insert(rel.clone(), src.clone());
            self.copies.push((PathBuf::from(&rel), Contents::Copy(src)));
        }
        Some(rel)
    }

    fn finish(self, r: &mut Reader, region: String) -> Vec<(PathBuf, Contents)> {
        let role = match self.role {
            Some(arn) => RoleSpec {
                arn: Some(arn),
                ..RoleSpec::default()
            },
            None => {
                r.warn("", "the FDL names no `iam.role`: the stack asks scar to manage a least-privilege role", Some("set `spec.role.arn` in stack.yaml to use an existing role instead".into()));
                RoleSpec {
                    managed: Some(true),
                    ..RoleSpec::default()
                }
            }
        };
        let stack = StackManifest {
            api_version: ApiVersion::V1Alpha1,
            kind: StackKind::Stack,
            metadata: Metadata {
                name: self.name.clone(),
                labels: BTreeMap::new(),
            },
            spec: StackSpec {
                region,
                account_id: None,
                role,
                defaults: FunctionDefaults::default(),
                tags: BTreeMap::new(),
                buckets: BucketPolicy::default(),
                storage_providers: self.providers,
                failures: None,
            },
        };
        let mut files = vec![(
            PathBuf::from("stack.yaml"),
            Contents::Text(manifest_text(&stack)),
        )];
        for f in &self.functions {
            files.push((
                PathBuf::from(format!("{}.yaml", f.manifest.metadata.name)),
                Contents::Text(manifest_text(&f.manifest)),
            ));
        }
        if let Some(w) = workflow(&self.name, &self.functions) {
            files.push((
                PathBuf::from("workflow.yaml"),
                Contents::Text(manifest_text(&w)),
            ));
        }
        files.extend(self.copies);
        files
    }
}

fn manifest_text<T: serde::Serialize>(m: &T) -> String {
    let value = serde_json::to_value(m).expect("invariant: manifest types serialise to JSON");
    format!(
        "# Imported from a SCAR function definition file by `scar import`.\n{}",
        crate::render::yaml::to_yaml(&value)
    )
}

/// The `lambda` block's `input` and `output` lists: S3 paths become inputs and outputs;
/// providers scar cannot trigger on or write to are reported.
fn storage(r: &mut Reader, l: &mut Map<String, Value>, lp: &str, spec: &mut FunctionSpec) {
    for (i, input) in r
        .list(l, lp, "input")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let p = format!("{lp}/input/{i}");
        let Value::Object(mut m) = input else {
            continue;
        };
        let provider = r
            .string(&mut m, &p, "storage_provider")
            .unwrap_or_else(|| "s3".into());
        let path = r.string(&mut m, &p, "path").unwrap_or_default();
        if provider != "s3" {
            r.dropped(
                &p,
                &format!("scar triggers only on the stack's own S3 buckets, not on `{provider}`"),
            );
        } else {
            let (bucket, prefix) = split_path(&path);
            spec.input.push(InputSpec::S3(S3Input {
                bucket,
                prefix,
                suffix: None,
                events: None,
                queue: None,
            }));
        }
        for key in ["suffix", "prefix"] {
            r.drop_key(&mut m, &p, key, "SCAR's input filters are not S3 notification rules: set `suffix` on the scar input by hand");
        }
        r.leftovers(m, &p);
    }
    for (i, output) in r
        .list(l, lp, "output")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let p = format!("{lp}/output/{i}");
        let Value::Object(mut m) = output else {
            continue;
        };
        let provider = r
            .string(&mut m, &p, "storage_provider")
            .unwrap_or_else(|| "s3".into());
        let path = r.string(&mut m, &p, "path").unwrap_or_default();
        let (bucket, prefix) = split_path(&path);
        let filter = OutputFilter {
            prefix: r.strings(&mut m, &p, "prefix").unwrap_or_default(),
            suffix: r.strings(&mut m, &p, "suffix").unwrap_or_default(),
        };
        let filter = (!filter.prefix.is_empty() || !filter.suffix.is_empty()).then_some(filter);
        if UNWRITABLE
            .iter()
            .any(|k| provider.starts_with(&format!("{k}.")))
        {
            r.dropped(&p, WHY_UNWRITABLE);
            continue;
        }
        let provider = (provider != "s3").then_some(provider);
        spec.output.push(OutputSpec {
            bucket,
            prefix,
            provider,
            filter,
        });
        r.leftovers(m, &p);
    }
}

/// SCAR's `bucket/folder/sub` as bucket and `folder/sub/` prefix.
fn split_path(path: &str) -> (String, Option<String>) {
    let path = path.trim_matches('/');
    match path.split_once('/') {
        Some((bucket, rest)) if !rest.is_empty() => (
            bucket.to_owned(),
            Some(format!("{}/", rest.trim_end_matches('/'))),
        ),
        Some((bucket, _)) => (bucket.to_owned(), None),
        None => (path.to_owned(), None),
    }
}

/// A Workflow over the functions that chain through S3, stages in topological order.
fn workflow(stack: &str, functions: &[Function]) -> Option<WorkflowManifest> {
    let specs: Vec<&FunctionSpec> = functions.iter().map(|f| &f.manifest.spec).collect();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (a, fa) in specs.iter().enumerate() {
        for (b, fb) in specs.iter().enumerate() {
            let chained = a != b
                && fa
                    .output
                    .iter()
                    .any(|o| fb.input.iter().any(|i| crate::manifest::check::feeds(o, i)));
            if chained {
                edges.push((a, b));
            }
        }
    }
    if edges.is_empty() {
        return None;
    }
    let involved: Vec<usize> = (0..specs.len())
        .filter(|i| edges.iter().any(|(a, b)| a == i || b == i))
        .collect();
    let mut order = Vec::new();
    let mut remaining = involved.clone();
    while !remaining.is_empty() {
        let ready = remaining
            .iter()
            .position(|&n| !edges.iter().any(|&(a, b)| b == n && remaining.contains(&a)))?;
        order.push(remaining.remove(ready));
    }
    let name = |i: usize| functions[i].manifest.metadata.name.clone();
    Some(WorkflowManifest {
        api_version: ApiVersion::V1Alpha1,
        kind: WorkflowKind::Workflow,
        metadata: Metadata {
            name: stack.to_owned(),
            labels: BTreeMap::new(),
        },
        spec: WorkflowSpec {
            stages: order.iter().map(|&i| name(i)).collect(),
            edges: Some(
                edges
                    .iter()
                    .map(|&(a, b)| EdgeSpec {
                        from: name(a),
                        to: name(b),
                        bucket: None,
                    })
                    .collect(),
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_from_file_names() {
        assert_eq!(
            stack_name_from(Path::new("scar-video-process.yaml")),
            "scar-video-process"
        );
        assert_eq!(stack_name_from(Path::new("My_FDL (1).yml")), "my-fdl-1");
        assert_eq!(stack_name_from(Path::new("___.yaml")), "imported");
    }

    #[test]
    fn paths_split_into_bucket_and_prefix() {
        assert_eq!(
            split_path("scar-video/input"),
            ("scar-video".into(), Some("input/".into()))
        );
        assert_eq!(split_path("bucket"), ("bucket".into(), None));
        assert_eq!(split_path("b/a/b/"), ("b".into(), Some("a/b/".into())));
    }
}
