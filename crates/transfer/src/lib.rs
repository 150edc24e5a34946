//! Streaming S3 transfers between an object and a file, with memory that does not grow with
//! the object: downloads stream to disk (above one part, the rest in ranged parts fetched in
//! parallel, each pinned to the first answer's ETag so a concurrent overwrite cannot mix two
//! versions), uploads stream from disk (above one part, as a multipart upload whose parts are
//! read from the file, aborted when any part fails). scar's `put`/`get` and scar-supervisor's
//! inputs and outputs use the same code.

#![forbid(unsafe_code)]

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_smithy_types::byte_stream::Length;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// 8 MiB: the part size of multipart uploads and ranged downloads, as the AWS CLI uses.
pub const PART_SIZE: u64 = 8 * 1024 * 1024;

/// S3's most parts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// How a transfer is cut up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bytes per part (at least 5 MiB for uploads, S3's minimum).
    pub part_size: u64,
    /// Parts in flight at once.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            part_size: PART_SIZE,
            concurrency: 4,
        }
    }
}

impl Settings {
    /// The part size for an upload of `size` bytes: the configured one, or larger when the
    /// object would need more than S3's 10,000 parts.
    #[must_use]
    pub fn upload_part_size(&self, size: u64) -> u64 {
        self.part_size.max(size.div_ceil(MAX_PARTS))
    }
}

/// A failed transfer.
#[derive(Debug)]
pub struct TransferError {
    /// What failed, with the object and the file named.
    pub message: String,
    /// True when the object does not exist (`NoSuchKey`, 404).
    pub not_found: bool,
    /// True when the file side failed (reading or writing the local file).
    pub local: bool,
    /// True when trying again may work: a network failure, a timeout, throttling or a 5xx.
    pub transient: bool,
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransferError {}

/// A failed S3 request, said in full.
fn sdk<E, R>(what: String, e: &aws_sdk_s3::error::SdkError<E, R>) -> TransferError
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    let transient = match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "SlowDown"
                    | "Throttling"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    TransferError {
        message: format!("{what}: {}", DisplayErrorContext(e)),
        not_found: matches!(e.code(), Some("NoSuchKey" | "NotFound")),
        local: false,
        transient,
    }
}

fn remote(message: String) -> TransferError {
    TransferError {
        message,
        not_found: false,
        local: false,
        transient: true,
    }
}

fn local(path: &Path, e: impl std::fmt::Display) -> TransferError {
    TransferError {
        message: format!("{}: {e}", path.display()),
        not_found: false,
        local: true,
        transient: false,
    }
}

/// Streams `s3://bucket/key` into the file at `path` (created or truncated); returns its size.
///
/// # Errors
/// When S3 refuses or fails, the object changes during the download, or the file cannot be
/// written. A failed download leaves a partial file behind for the caller to remove.
pub async fn download(
    s3: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    settings: Settings,
) -> Result<u64, TransferError> {
    let object = format!("s3://{bucket}/{key}");
    let first = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk(format!("downloading {object}"), &e))?;
    let total = u64::try_from(first.content_length().unwrap_or(0)).unwrap_or(0);
    let etag = first.e_tag().map(str::to_owned);
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| local(path, e))?;
    let part = settings.part_size.max(1);
    if total <= part.saturating_mul(2) || etag.is_none() {
        let n = write_stream(first.body, &mut file, None, path, &object).await?;
        return finish(file, path, n, total, &object).await;
    }
    file.set_len(total).await.map_err(|e| local(path, e))?;
    // The first answer gives the first part; the rest come as ranges of the same version.
    write_stream(first.body, &mut file, Some(part), path, &object).await?;
    drop(file);
    let ranges: Vec<(u64, u64)> = (1..total.div_ceil(part))
        .map(|i| (i * part, ((i + 1) * part).min(total) - 1))
        .collect();
    tracing::debug!(
        object,
        parts = ranges.len() + 1,
        total,
        "downloading in ranged parts"
    );
    stream::iter(ranges)
        .map(|(start, end)| {
            let (object, etag) = (&object, etag.as_deref());
            async move {
                let got = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .range(format!("bytes={start}-{end}"))
                    .set_if_match(etag.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| {
                        sdk(
                            format!("downloading {object} (bytes {start}-{end}; a changed object fails here)"),
                            &e,
                        )
                    })?;
                let mut file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .await
                    .map_err(|e| local(path, e))?;
                file.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|e| local(path, e))?;
                let n = write_stream(got.body, &mut file, None, path, object).await?;
                if n != end - start + 1 {
                    return Err(remote(format!(
                        "downloading {object}: bytes {start}-{end} gave {n} bytes"
                    )));
                }
                file.flush().await.map_err(|e| local(path, e))
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(total)
}

async fn finish(
    mut file: tokio::fs::File,
    path: &Path,
    written: u64,
    total: u64,
    object: &str,
) -> Result<u64, TransferError> {
    file.flush().await.map_err(|e| local(path, e))?;
    if written != total {
        return Err(remote(format!(
            "downloading {object}: got {written} of {total} bytes"
        )));
    }
    Ok(written)
}

/// Writes `body` to `file` at its position, at most `limit` bytes; returns how many.
async fn write_stream(
    mut body: ByteStream,
    file: &mut tokio::fs::File,
    limit: Option<u64>,
    path: &Path,
    object: &str,
) -> Result<u64, TransferError> {
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| remote(format!("reading {object}: {}", DisplayErrorContext(&e))))?;
        let take = limit.map_or(chunk.len(), |l| {
            usize::try_from(l.saturating_sub(written)).map_or(chunk.len(), |r| r.min(chunk.len()))
        });
        file.write_all(&chunk[..take])
            .await
            .map_err(|e| local(path, e))?;
        written += take as u64;
        if limit.is_some_and(|l| written >= l) {
            break;
        }
    }
    Ok(written)
}

/// Streams the file at `path` to `s3://bucket/key` with `metadata`; returns its size.
///
/// # Errors
/// When the file cannot be read or S3 refuses. A failed multipart upload is aborted, so it
/// leaves no parts behind.
pub async fn upload(
    s3: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    metadata: &[(&str, &str)],
    settings: Settings,
) -> Result<u64, TransferError> {
    let object = format!("s3://{bucket}/{key}");
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| local(path, e))?
        .len();
    let part = settings.upload_part_size(size);
    if size <= part {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| local(path, e))?;
        let mut put = s3.put_object().bucket(bucket).key(key).body(body);
        for (k, v) in metadata {
            put = put.metadata(*k, *v);
        }
        put.send()
            .await
            .map_err(|e| sdk(format!("uploading {object}"), &e))?;
        return Ok(size);
    }
    // CRC32 for the object and each part, as the SDK checks single uploads.
    let mut create = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32);
    for (k, v) in metadata {
        create = create.metadata(*k, *v);
    }
    let created = create
        .send()
        .await
        .map_err(|e| sdk(format!("starting the multipart upload of {object}"), &e))?;
    let Some(upload_id) = created.upload_id().map(str::to_owned) else {
        return Err(remote(format!(
            "starting the multipart upload of {object}: S3 gave no upload id"
        )));
    };
    let parts = upload_parts(s3, bucket, key, path, &upload_id, size, part, settings).await;
    let done = match parts {
        Ok(parts) => s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk(format!("completing the multipart upload of {object}"), &e)),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        // Parts left behind cost storage until a lifecycle rule removes them: abort.
        if let Err(abort) = s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await
        {
            tracing::warn!(object, upload_id, error = %DisplayErrorContext(&abort), "aborting the failed multipart upload failed");
        }
        return Err(e);
    }
    Ok(size)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one upload's coordinates, used once"
)]
async fn upload_parts(
    s3: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    upload_id: &str,
    size: u64,
    part: u64,
    settings: Settings,
) -> Result<Vec<CompletedPart>, TransferError> {
    let count = size.div_ceil(part);
    let object = format!("s3://{bucket}/{key}");
    tracing::debug!(object, parts = count, size, "multipart upload");
    let mut parts: Vec<CompletedPart> = stream::iter(0..count)
        .map(|i| {
            let object = &object;
            async move {
                let offset = i * part;
                let len = part.min(size - offset);
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(len))
                    .build()
                    .await
                    .map_err(|e| local(path, e))?;
                let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
                let out = s3
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .content_length(i64::try_from(len).unwrap_or(i64::MAX))
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| sdk(format!("uploading part {number} of {object}"), &e))?;
                Ok::<_, TransferError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                        .build(),
                )
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.part_number());
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_uploads_grow_their_parts_to_fit_ten_thousand() {
        let s = Settings::default();
        assert_eq!(s.upload_part_size(1), PART_SIZE);
        assert_eq!(s.upload_part_size(10_000 * PART_SIZE), PART_SIZE);
        let huge = 5 * 1024 * 1024 * 1024 * 1024u64;
        let p = s.upload_part_size(huge);
        assert!(huge.div_ceil(p) <= 10_000 && p > PART_SIZE);
    }
}
