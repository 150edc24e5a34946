//! Names: what is a valid stack, function or bucket name, and the AWS names scar derives from
//! them. The derivations live here so that validation and (later) the resource graph agree.

/// Longest stack name: it prefixes role, Batch, API and notification names.
pub const STACK_NAME_MAX: usize = 32;
/// Longest Lambda function name.
pub const FUNCTION_NAME_MAX: usize = 64;

/// Every AWS name scar derives from a stack and a function name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedNames {
    /// CloudWatch log group of the function.
    pub log_group: String,
    /// Batch compute environment, job queue and job definition name.
    pub batch: String,
    /// The stack's ECR repository, holding the images scar assembles for its functions (one
    /// repository per stack, so the supervisor's layer is stored and uploaded once).
    pub ecr_repository: String,
    /// Default API Gateway REST API name.
    pub api: String,
    /// Prefix of the function's S3 notification entry Ids: `scar.<stack>.<function>.`. A
    /// stack or function name never holds a `.`, so no stack's Ids can look like another's.
    pub notification_id_prefix: String,
}

/// The names derived for `function` in `stack`.
#[must_use]
pub fn derive(stack: &str, function: &str) -> DerivedNames {
    DerivedNames {
        log_group: format!("/aws/lambda/{function}"),
        batch: format!("scar-{stack}-{function}"),
        ecr_repository: format!("scar/{stack}").to_lowercase(),
        api: format!("scar-{stack}-{function}"),
        notification_id_prefix: format!("scar.{stack}.{function}."),
    }
}

/// The environment variables scar sets on every function besides the user's: the supervisor
/// reads them to find its stack and function.
#[must_use]
pub fn supervisor_env(stack: &str, function: &str) -> Vec<(&'static str, String)> {
    vec![
        (scar_contract::env::STACK, stack.to_owned()),
        (scar_contract::env::FUNCTION, function.to_owned()),
    ]
}

/// The Batch compute environment of `function`. Fargate and EC2 environments cannot turn into
/// each other, so they have different names: switching types creates the new environment,
/// moves the queue to it, then deletes the old one.
#[must_use]
pub fn batch_compute_environment(stack: &str, function: &str, fargate: bool) -> String {
    let base = derive(stack, function).batch;
    if fargate {
        format!("fargate-{base}")
    } else {
        base
    }
}

/// True when the notification entry Id `id`, which invokes `function_arn`, is one `stack`
/// wrote. Today's grammar is `scar.<stack>.<function>.<8 hex>`; entries written before it,
/// `scar-<stack>-<function>-<8 hex>`, are read too (so they are replaced, not orphaned): there
/// the function named by the entry's ARN fixes where the stack name ends, so stack `ab` never
/// claims stack `ab-x`'s `scar-ab-x-f-...`.
#[must_use]
pub fn trigger_id_is_stacks(stack: &str, id: &str, function_arn: &str) -> bool {
    let hash = |h: &str| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(rest) = id.strip_prefix("scar.") {
        let parts: Vec<&str> = rest.split('.').collect();
        return matches!(parts.as_slice(), [s, f, h] if *s == stack && !f.is_empty() && hash(h));
    }
    let Some(function) = function_of_arn(function_arn).filter(|f| !f.is_empty()) else {
        return false;
    };
    id.strip_prefix(&format!("scar-{stack}-{function}-"))
        .is_some_and(hash)
}

/// The function a Lambda function ARN names, its qualifier (`:$LATEST`, a version) left off;
/// `None` for an ARN of anything else.
#[must_use]
pub fn function_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.split(":function:").nth(1)?;
    Some(rest.split(':').next().unwrap_or(rest))
}

/// The stage name of a function's API when the manifest gives none (SCAR's).
pub const DEFAULT_STAGE: &str = "scar";

/// The name of the role scar manages for a stack.
#[must_use]
pub fn managed_role(stack: &str) -> String {
    format!("scar-{stack}-exec")
}

/// Why a stack name is invalid, if it is.
#[must_use]
pub fn stack_name_problem(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > STACK_NAME_MAX {
        Some(format!("must be 1 to {STACK_NAME_MAX} characters"))
    } else if !ok_chars {
        Some("may hold only lowercase letters, digits and `-`".into())
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("must start and end with a letter or digit".into())
    } else if !is_ecr_repository_name(&derive(name, "x").ecr_repository) {
        Some("must not hold `--`: it names the stack's ECR repository, whose names cannot".into())
    } else {
        None
    }
}

/// Why a function name is invalid for Lambda or for a name derived from it, if it is.
#[must_use]
pub fn function_name_problem(stack: &str, name: &str) -> Option<String> {
    if name.is_empty() || name.len() > FUNCTION_NAME_MAX {
        return Some(format!(
            "a Lambda function name must be 1 to {FUNCTION_NAME_MAX} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Some("a Lambda function name may hold only letters, digits, `-` and `_`".into());
    }
    let derived = derive(stack, name);
    if derived.batch.len() > 128 {
        return Some(format!(
            "the derived Batch name `{}` is longer than 128 characters",
            derived.batch
        ));
    }
    None
}

/// ECR's repository grammar: components of `[a-z0-9]+([._-][a-z0-9]+)*` joined by `/`.
fn is_ecr_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|component| {
            !component.is_empty()
                && component.split(['.', '_', '-']).all(|run| {
                    !run.is_empty()
                        && run
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
        })
}

/// Why a bucket name breaks S3's naming rules, if it does.
#[must_use]
pub fn bucket_name_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&name.len()) {
        return Some("a bucket name must be 3 to 63 characters");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
    {
        return Some("a bucket name may hold only lowercase letters, digits, `.` and `-`");
    }
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Some("a bucket name must start and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Some("a bucket name must not hold `..`, `.-` or `-.`");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Some("a bucket name must not look like an IP address");
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.starts_with("amzn-s3-demo-")
    {
        return Some("a bucket name must not start with `xn--`, `sthree-` or `amzn-s3-demo-`");
    }
    if name.ends_with("-s3alias") || name.ends_with("--ol-s3") || name.ends_with(".mrap") {
        return Some("a bucket name must not end with `-s3alias`, `--ol-s3` or `.mrap`");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_take_each_others_triggers() {
        let arn = |f: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{f}");
        // Stack `ab-x`'s function `f` and stack `ab`'s function `x-f` under today's grammar.
        let ab_x = format!("{}1a2b3c4d", derive("ab-x", "f").notification_id_prefix);
        let ab = format!("{}1a2b3c4d", derive("ab", "x-f").notification_id_prefix);
        assert_ne!(ab, ab_x);
        assert!(trigger_id_is_stacks("ab-x", &ab_x, &arn("f")));
        assert!(!trigger_id_is_stacks("ab", &ab_x, &arn("f")));
        assert!(trigger_id_is_stacks("ab", &ab, &arn("x-f")));
        assert!(!trigger_id_is_stacks("ab-x", &ab, &arn("x-f")));
        // Entries the former grammar wrote stay readable, and unambiguous through the ARN.
        assert!(trigger_id_is_stacks(
            "ab-x",
            "scar-ab-x-f-1a2b3c4d",
            &arn("f")
        ));
        assert!(!trigger_id_is_stacks(
            "ab",
            "scar-ab-x-f-1a2b3c4d",
            &arn("f")
        ));
        assert!(trigger_id_is_stacks(
            "ab",
            "scar-ab-x-f-1a2b3c4d",
            &arn("x-f")
        ));
        assert!(!trigger_id_is_stacks("ab", "scar-ab-f-zz", &arn("f")));
        assert_eq!(function_of_arn(&format!("{}:$LATEST", arn("f"))), Some("f"));
        assert_eq!(function_of_arn("arn:aws:s3:::f"), None);
        assert!(!trigger_id_is_stacks("ab", "queue-uploads", &arn("f")));
        assert!(!trigger_id_is_stacks(
            "ab",
            "scar.ab.f.1a2b3c4d.x",
            &arn("f")
        ));
    }

    #[test]
    fn bucket_rules() {
        assert_eq!(bucket_name_problem("scar-video"), None);
        assert!(bucket_name_problem("ab").is_some());
        assert!(bucket_name_problem("My_Bucket").is_some());
        assert!(bucket_name_problem("192.168.1.1").is_some());
        assert!(bucket_name_problem("a..b").is_some());
        assert!(bucket_name_problem("-abc").is_some());
        assert!(bucket_name_problem("xn--abc").is_some());
    }

    #[test]
    fn function_names_must_suit_every_derived_name() {
        assert_eq!(
            function_name_problem("demo", "scar-batch-ffmpeg-split"),
            None
        );
        assert!(function_name_problem("demo", "bad name").is_some());
        assert!(function_name_problem("demo", &"x".repeat(65)).is_some());
        // The function's name tags its image in the stack's repository: any Lambda name does.
        assert_eq!(function_name_problem("demo", "a__b"), None);
        assert_eq!(function_name_problem("demo", "trailing-"), None);
    }

    #[test]
    fn stack_names() {
        assert_eq!(stack_name_problem("video-process"), None);
        assert!(stack_name_problem("Video").is_some());
        assert!(stack_name_problem("video--process").is_some());
        assert!(stack_name_problem(&"a".repeat(33)).is_some());
        assert!(stack_name_problem("-a").is_some());
    }
}
