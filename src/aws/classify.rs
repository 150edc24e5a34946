//! The one place SDK errors become [`CloudError`]s. Core code branches on `kind`, never on an
//! AWS error string.

use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};

use crate::cloud::{CloudError, ErrorKind};

/// Classifies any SDK error.
pub fn classify<E>(op: &str, err: &SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let (code, message) = match err {
        SdkError::ServiceError(ctx) => (
            ctx.err().code().unwrap_or_default().to_owned(),
            ctx.err().message().unwrap_or_default().to_owned(),
        ),
        other => (
            String::new(),
            aws_sdk_lambda::error::DisplayErrorContext(other).to_string(),
        ),
    };
    let kind = kind_of(&code, &message, status, err);
    let text = if code.is_empty() && message.is_empty() {
        aws_sdk_lambda::error::DisplayErrorContext(err).to_string()
    } else if code.is_empty() {
        message
    } else if message.is_empty() {
        code
    } else {
        format!("{code}: {message}")
    };
    CloudError::new(kind, op, text)
}

fn kind_of<E>(
    code: &str,
    message: &str,
    status: Option<u16>,
    err: &SdkError<E, HttpResponse>,
) -> ErrorKind {
    match code {
        "ResourceNotFoundException"
        | "NoSuchEntity"
        | "NoSuchBucket"
        | "NotFound"
        | "NoSuchKey"
        | "NoSuchTagSet"
        | "NoSuchTagSetError"
        | "NotFoundException"
        | "RepositoryNotFoundException"
        | "ResourceNotFound"
        | "QueueDoesNotExist"
        | "AWS.SimpleQueueService.NonExistentQueue" => return ErrorKind::NotFound,
        // SQS keeps a deleted queue's name for 60 seconds.
        "QueueDeletedRecently" | "AWS.SimpleQueueService.QueueDeletedRecently" => {
            return ErrorKind::NotReady;
        }
        "ResourceAlreadyExistsException"
        | "EntityAlreadyExists"
        | "BucketAlreadyOwnedByYou"
        | "RepositoryAlreadyExistsException"
        | "QueueNameExists"
        | "QueueAlreadyExists" => {
            return ErrorKind::AlreadyExists;
        }
        "ResourceConflictException" if message.contains("already exists") => {
            return ErrorKind::AlreadyExists;
        }
        "ResourceConflictException"
        | "OperationAbortedException"
        | "ConflictException"
        | "ConditionalRequestConflict"
        | "ConcurrentModificationException"
        | "ResourceInUseException" => {
            return ErrorKind::Conflict;
        }
        "PreconditionFailedException" | "PreconditionFailed" => return ErrorKind::Precondition,
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "ProvisionedThroughputExceededException"
        | "RequestThrottled" => {
            return ErrorKind::Throttled;
        }
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthorizationError" => {
            return ErrorKind::AccessDenied;
        }
        // A role made a moment ago that Lambda cannot assume yet (IAM is eventually
        // consistent): the same call succeeds once it has propagated.
        "InvalidParameterValueException" if message.contains("cannot be assumed") => {
            return ErrorKind::NotReady;
        }
        "InvalidParameterValueException"
        | "ValidationError"
        | "ValidationException"
        | "InvalidArgument"
        | "MalformedPolicyDocument"
        | "BadRequestException"
        | "InvalidRequest" => return ErrorKind::Invalid,
        _ => {}
    }
    match (status, err) {
        (Some(429), _) => ErrorKind::Throttled,
        (Some(404), _) => ErrorKind::NotFound,
        (Some(412), _) => ErrorKind::Precondition,
        (Some(s), _) if s >= 500 => ErrorKind::Transient,
        (
            _,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_),
        ) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}
