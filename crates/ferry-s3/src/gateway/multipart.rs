//! Multipart uploads: parts are spooled (see [`super::uploads`]) and streamed into the
//! backend as one object on completion.

use std::time::{SystemTime, UNIX_EPOCH};

use ferry_store::{CommitOptions, ObjectMeta, RangeRequest, check_key};
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::buckets::owner;
use super::objects::copy_source;
use super::uploads::Manifest;
use super::{Gateway, etag, pump, timestamp};
use crate::checksum::{self, Expected};
use crate::conditions::{ReadConditions, write_condition};
use crate::error::to_s3;

/// Every part but the last must be at least this big, like S3.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_NUMBER: i32 = 10_000;
const MAX_LISTED: usize = 1000;
/// CompleteMultipartUpload answers at once and keeps the connection alive after this long.
const KEEP_ALIVE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

fn check_part_number(n: i32) -> S3Result<()> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidArgument,
            "part number must be between 1 and 10000, got {n}"
        ))
    }
}

/// The manifest of `id`, which must belong to `bucket`/`key`.
async fn manifest_for(gw: &Gateway, id: &str, bucket: &str, key: &str) -> S3Result<Manifest> {
    let manifest = gw.uploads.manifest(id).await?;
    if manifest.bucket != bucket || manifest.key != key {
        return Err(s3_error!(
            NoSuchUpload,
            "upload {id:?} is not for this bucket and key"
        ));
    }
    Ok(manifest)
}

pub(super) async fn create(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    gw.backend.head_bucket(&input.bucket).await.map_err(to_s3)?;
    check_key(&input.key).map_err(to_s3)?;
    let algorithm = input.checksum_algorithm.clone();
    let (bucket, key) = (input.bucket.clone(), input.key.clone());
    let manifest = Manifest {
        attrs: attrs_from!(input),
        bucket: bucket.clone(),
        key: key.clone(),
        checksum_algorithm: algorithm.as_ref().map(|a| a.as_str().to_owned()),
        initiated: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    };
    let id = gw.uploads.create(&manifest).await?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(bucket),
        key: Some(key),
        upload_id: Some(id),
        checksum_algorithm: algorithm,
        ..Default::default()
    }))
}

pub(super) async fn upload_part(
    gw: &Gateway,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let input = req.input;
    check_part_number(input.part_number)?;
    let manifest = manifest_for(gw, &input.upload_id, &input.bucket, &input.key).await?;
    let expected_md5 = super::objects::decode_content_md5(input.content_md5.as_deref())?;
    let mut expected = Expected::from_headers(&req.headers);
    let algorithm = input.checksum_algorithm.clone().or_else(|| {
        manifest
            .checksum_algorithm
            .clone()
            .map(ChecksumAlgorithm::from)
    });
    let mut hasher = checksum::hasher_for(&req.headers, &expected, algorithm.as_ref());
    let Some(body) = input.body else {
        return Err(s3_error!(IncompleteBody, "UploadPart needs a body"));
    };
    let size_hint = input.content_length.and_then(|n| u64::try_from(n).ok());
    let mut writer = gw
        .uploads
        .part_writer(&input.upload_id, input.part_number, size_hint)
        .await?;
    pump(body, writer.as_mut(), |chunk| hasher.update(chunk)).await?;
    if let Some(trailers) = req.trailing_headers.as_ref().and_then(|t| t.take()) {
        expected.merge(&trailers);
    }
    let checksums = checksum::verify(hasher.finalize(), &expected)?;
    let stored = checksum::to_dto(&checksums);
    let meta = writer
        .commit(CommitOptions {
            attrs: ferry_store::ObjectAttrs {
                checksums,
                ..Default::default()
            },
            expected_md5,
            ..CommitOptions::default()
        })
        .await
        .map_err(to_s3)?;
    let mut output = UploadPartOutput {
        e_tag: Some(etag(&meta.etag)),
        ..Default::default()
    };
    set_checksums!(output, stored);
    Ok(S3Response::new(output))
}

/// Parses `bytes=first-last`, the only form `x-amz-copy-source-range` takes.
fn copy_range(range: Option<&str>) -> S3Result<Option<RangeRequest>> {
    let Some(range) = range else { return Ok(None) };
    let parsed = range.strip_prefix("bytes=").and_then(|r| {
        let (first, last) = r.split_once('-')?;
        Some((first.parse().ok()?, last.parse().ok()?))
    });
    match parsed {
        Some((first, last)) if first <= last => Ok(Some(RangeRequest::FromTo {
            first,
            last: Some(last),
        })),
        _ => Err(s3_error!(
            InvalidArgument,
            "x-amz-copy-source-range must look like bytes=first-last"
        )),
    }
}

pub(super) async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    check_part_number(input.part_number)?;
    manifest_for(gw, &input.upload_id, &input.bucket, &input.key).await?;
    let (src_bucket, src_key) = copy_source(&input.copy_source)?;
    let range = copy_range(input.copy_source_range.as_deref())?;
    let got = gw
        .backend
        .get(src_bucket, src_key, range)
        .await
        .map_err(to_s3)?;
    ReadConditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    }
    .check(&got.meta, false)?;
    let length = got.range.end - got.range.start;
    let mut writer = gw
        .uploads
        .part_writer(&input.upload_id, input.part_number, Some(length))
        .await?;
    let mut body = got.body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| s3_error!(InternalError, "reading the copy source: {e}"))?;
        writer.write(chunk).await.map_err(to_s3)?;
    }
    let meta = writer
        .commit(CommitOptions::default())
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(timestamp(meta.last_modified)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// Checks the client's part list against what was uploaded and returns the parts to
/// assemble, in order, with the multipart ETag `md5(part md5s)-N`.
fn plan(
    requested: &[CompletedPart],
    stored: &[(i32, ObjectMeta)],
) -> S3Result<(Vec<(i32, ObjectMeta)>, String)> {
    if requested.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "CompleteMultipartUpload lists no parts"
        ));
    }
    let mut chosen = Vec::with_capacity(requested.len());
    let mut previous = 0;
    for part in requested {
        let number = part
            .part_number
            .ok_or_else(|| s3_error!(MalformedXML, "a part has no PartNumber"))?;
        if number <= previous {
            return Err(s3_error!(
                InvalidPartOrder,
                "parts must be listed in ascending order"
            ));
        }
        previous = number;
        let meta = stored
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, m)| m)
            .ok_or_else(|| s3_error!(InvalidPart, "part {number} was not uploaded"))?;
        if part.e_tag.as_ref().is_some_and(|t| t.value() != meta.etag) {
            return Err(s3_error!(InvalidPart, "part {number} has a different ETag"));
        }
        chosen.push((number, meta.clone()));
    }
    let mut md5s = Md5::new();
    for (i, (number, meta)) in chosen.iter().enumerate() {
        if i + 1 < chosen.len() && meta.size < MIN_PART_SIZE {
            return Err(s3_error!(
                EntityTooSmall,
                "part {number} is {} bytes; every part but the last needs at least 5 MiB",
                meta.size
            ));
        }
        let raw = hex::decode(&meta.etag)
            .map_err(|_| s3_error!(InternalError, "part {number} has a malformed ETag"))?;
        md5s.update(&raw);
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    Ok((chosen, etag))
}

pub(super) async fn complete(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let manifest = manifest_for(gw, &input.upload_id, &input.bucket, &input.key).await?;
    let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let requested = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default();
    let stored = gw.uploads.parts(&input.upload_id).await?;
    let (parts, etag_value) = plan(&requested, &stored)?;
    let total: u64 = parts.iter().map(|(_, m)| m.size).sum();

    let gw = gw.clone();
    let (bucket, key, id) = (input.bucket, input.key, input.upload_id);
    let assemble = async move {
        let size_hint = Some(total);
        let opts = ferry_store::PutOptions {
            size_hint,
            // The multipart ETag is known; hashing the whole object again would be wasted.
            etag_given: true,
        };
        let mut writer = gw.backend.put(&bucket, &key, opts).await.map_err(to_s3)?;
        for (number, _) in &parts {
            let mut body = gw.uploads.part_body(&id, *number).await?;
            while let Some(chunk) = body.next().await {
                let chunk =
                    chunk.map_err(|e| s3_error!(InternalError, "reading part {number}: {e}"))?;
                writer.write(chunk).await.map_err(to_s3)?;
            }
        }
        let meta = writer
            .commit(CommitOptions {
                attrs: manifest.attrs,
                etag: Some(etag_value),
                expected_md5: None,
                condition,
            })
            .await
            .map_err(to_s3)?;
        gw.uploads.remove(&id).await?;
        Ok(CompleteMultipartUploadOutput {
            location: Some(format!("/{bucket}/{key}")),
            bucket: Some(bucket),
            key: Some(key),
            e_tag: Some(etag(&meta.etag)),
            ..Default::default()
        })
    };
    // Assembling a large object can outlast a client's read timeout. A quick one answers
    // normally, with a proper status on error; a slow one answers 200 at once and keeps the
    // connection alive with whitespace until the result (or the error), as S3 does.
    let mut task = tokio::spawn(assemble);
    match tokio::time::timeout(KEEP_ALIVE_AFTER, &mut task).await {
        Ok(joined) => joined
            .map_err(|e| s3_error!(InternalError, "assembling the object failed: {e}"))?
            .map(S3Response::new),
        Err(_) => Ok(S3Response::new(CompleteMultipartUploadOutput {
            future: Some(Box::pin(async move {
                task.await
                    .map_err(|e| s3_error!(InternalError, "assembling the object failed: {e}"))?
            })),
            ..Default::default()
        })),
    }
}

pub(super) async fn abort(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    manifest_for(gw, &input.upload_id, &input.bucket, &input.key).await?;
    gw.uploads.remove(&input.upload_id).await?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(super) async fn list_parts(
    gw: &Gateway,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    manifest_for(gw, &input.upload_id, &input.bucket, &input.key).await?;
    let max = input
        .max_parts
        .map_or(MAX_LISTED, |n| (n.max(0) as usize).min(MAX_LISTED));
    let marker = input.part_number_marker.unwrap_or(0);
    let stored = gw.uploads.parts(&input.upload_id).await?;
    let after: Vec<_> = stored.into_iter().filter(|(n, _)| *n > marker).collect();
    let truncated = after.len() > max;
    let page: Vec<_> = after.into_iter().take(max).collect();
    let next = page.last().map(|(n, _)| *n);
    let parts = page
        .into_iter()
        .map(|(number, meta)| {
            let mut part = Part {
                part_number: Some(number),
                e_tag: Some(etag(&meta.etag)),
                size: Some(meta.size as i64),
                last_modified: Some(timestamp(meta.last_modified)),
                ..Default::default()
            };
            set_checksums!(part, checksum::to_dto(&meta.attrs.checksums));
            part
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: if truncated { next } else { None },
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(parts),
        owner: Some(owner()),
        initiator: Some(Initiator {
            display_name: Some("ferry".into()),
            id: Some("ferry".into()),
        }),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        ..Default::default()
    }))
}

pub(super) async fn list_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    gw.backend.head_bucket(&input.bucket).await.map_err(to_s3)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max = input
        .max_uploads
        .map_or(MAX_LISTED, |n| (n.max(0) as usize).min(MAX_LISTED));
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let id_marker = input.upload_id_marker.clone().unwrap_or_default();
    let mut uploads: Vec<(String, Manifest)> = gw
        .uploads
        .list()
        .await?
        .into_iter()
        .filter(|(_, m)| m.bucket == input.bucket && m.key.starts_with(&prefix))
        .filter(|(id, m)| {
            key_marker.is_empty()
                || m.key > key_marker
                || (m.key == key_marker && !id_marker.is_empty() && *id > id_marker)
        })
        .collect();
    uploads.sort_by(|a, b| (&a.1.key, &a.1.initiated, &a.0).cmp(&(&b.1.key, &b.1.initiated, &b.0)));
    let truncated = uploads.len() > max;
    uploads.truncate(max);
    let last = uploads.last().map(|(id, m)| (m.key.clone(), id.clone()));
    let listed = uploads
        .into_iter()
        .map(|(id, m)| MultipartUpload {
            initiated: Some(timestamp(m.initiated_time())),
            key: Some(m.key),
            upload_id: Some(id),
            owner: Some(owner()),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        next_key_marker: if truncated {
            last.as_ref().map(|l| l.0.clone())
        } else {
            None
        },
        next_upload_id_marker: if truncated { last.map(|l| l.1) } else { None },
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        uploads: Some(listed),
        ..Default::default()
    }))
}
