//! Single-object operations: PUT, GET, HEAD, DELETE, DeleteObjects, CopyObject.

use base64::Engine;
use ferry_store::{CommitOptions, ObjectMeta, PutOptions, RangeRequest};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Gateway, etag, parse_http_date, pump, timestamp};
use crate::checksum::{self, Expected};
use crate::conditions::{ReadConditions, write_condition};
use crate::error::to_s3;

/// DeleteObjects accepts at most this many keys per request, like S3.
const MAX_DELETE_KEYS: usize = 1000;

pub(super) fn decode_content_md5(value: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(value) = value else { return Ok(None) };
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5 digest"))
}

pub(super) async fn put(
    gw: &Gateway,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let expected_md5 = decode_content_md5(req.input.content_md5.as_deref())?;
    let condition = write_condition(
        req.input.if_match.as_ref(),
        req.input.if_none_match.as_ref(),
    )?;
    let mut expected = Expected::from_headers(&req.headers);
    let mut hasher = checksum::hasher_for(
        &req.headers,
        &expected,
        req.input.checksum_algorithm.as_ref(),
    );
    let input = req.input;
    let Some(body) = input.body else {
        return Err(s3_error!(IncompleteBody, "a PUT needs a body"));
    };
    let opts = PutOptions {
        size_hint: input.content_length.and_then(|n| u64::try_from(n).ok()),
        ..PutOptions::default()
    };
    let mut writer = gw
        .backend
        .put(&input.bucket, &input.key, opts)
        .await
        .map_err(to_s3)?;
    pump(body, writer.as_mut(), |chunk| hasher.update(chunk)).await?;
    if let Some(trailers) = req.trailing_headers.as_ref().and_then(|t| t.take()) {
        expected.merge(&trailers);
    }
    let mut attrs = attrs_from!(input);
    attrs.checksums = checksum::verify(hasher.finalize(), &expected)?;
    let stored = checksum::to_dto(&attrs.checksums);
    let meta = writer
        .commit(CommitOptions {
            attrs,
            etag: None,
            expected_md5,
            condition,
        })
        .await
        .map_err(to_s3)?;
    let mut output = PutObjectOutput {
        e_tag: Some(etag(&meta.etag)),
        ..Default::default()
    };
    set_checksums!(output, stored);
    Ok(S3Response::new(output))
}

pub(super) fn range_request(range: Option<&Range>) -> Option<RangeRequest> {
    range.map(|r| match *r {
        Range::Int { first, last } => RangeRequest::FromTo { first, last },
        Range::Suffix { length } => RangeRequest::Suffix { length },
    })
}

fn wants_checksums(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

pub(super) async fn get(
    gw: &Gateway,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let input = &req.input;
    if input.part_number.is_some_and(|n| n != 1) {
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("InvalidPartNumber".into()),
            "objects are stored whole; only part 1 exists",
        );
        e.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
        return Err(e);
    }
    let conditions = ReadConditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    };
    let range = range_request(input.range.as_ref());
    let got = match gw.backend.get(&input.bucket, &input.key, range).await {
        Ok(got) => got,
        // A 304 or 412 wins over a 416.
        Err(e @ ferry_store::Error::RangeNotSatisfiable { .. }) => {
            let meta = gw
                .backend
                .head(&input.bucket, &input.key)
                .await
                .map_err(to_s3)?;
            conditions.check(&meta, true)?;
            return Err(to_s3(e));
        }
        Err(e) => return Err(to_s3(e)),
    };
    conditions.check(&got.meta, true)?;
    let meta = got.meta;
    let partial = input.range.is_some();
    let length = got.range.end - got.range.start;
    let content_range = partial.then(|| {
        format!(
            "bytes {}-{}/{}",
            got.range.start,
            got.range.end.saturating_sub(1),
            meta.size
        )
    });
    // A checksum describes the whole object; a partial body must not carry one.
    let checksums = if wants_checksums(input.checksum_mode.as_ref()) && !partial {
        checksum::to_dto(&meta.attrs.checksums)
    } else {
        Checksum::default()
    };
    let attrs = meta.attrs;
    let mut output = GetObjectOutput {
        body: Some(StreamingBlob::wrap(sync_wrapper::SyncStream::new(got.body))),
        content_length: Some(length as i64),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&meta.etag)),
        last_modified: Some(timestamp(meta.last_modified)),
        content_type: input
            .response_content_type
            .clone()
            .or(attrs.content_type)
            .or_else(|| Some("binary/octet-stream".into())),
        content_encoding: input
            .response_content_encoding
            .clone()
            .or(attrs.content_encoding),
        content_disposition: input
            .response_content_disposition
            .clone()
            .or(attrs.content_disposition),
        content_language: input
            .response_content_language
            .clone()
            .or(attrs.content_language),
        cache_control: input.response_cache_control.clone().or(attrs.cache_control),
        expires: input
            .response_expires
            .clone()
            .or_else(|| attrs.expires.as_deref().and_then(parse_http_date)),
        metadata: Some(attrs.user_metadata.into_iter().collect()),
        ..Default::default()
    };
    set_checksums!(output, checksums);
    let mut response = S3Response::new(output);
    if partial {
        response.status = Some(http::StatusCode::PARTIAL_CONTENT);
    }
    Ok(response)
}

pub(super) async fn head(
    gw: &Gateway,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = &req.input;
    let meta = gw
        .backend
        .head(&input.bucket, &input.key)
        .await
        .map_err(to_s3)?;
    ReadConditions {
        if_match: input.if_match.as_ref(),
        if_none_match: input.if_none_match.as_ref(),
        if_modified_since: input.if_modified_since.as_ref(),
        if_unmodified_since: input.if_unmodified_since.as_ref(),
    }
    .check(&meta, true)?;
    let (content_length, content_range) = match input.range.as_ref() {
        None => (meta.size, None),
        Some(r) => {
            let range = range_request(Some(r))
                .and_then(|r| r.resolve(meta.size))
                .ok_or_else(|| s3_error!(InvalidRange))?;
            let header = format!("bytes {}-{}/{}", range.start, range.end - 1, meta.size);
            (range.end - range.start, Some(header))
        }
    };
    let checksums = if wants_checksums(input.checksum_mode.as_ref()) && content_range.is_none() {
        checksum::to_dto(&meta.attrs.checksums)
    } else {
        Checksum::default()
    };
    let attrs = meta.attrs;
    let mut output = HeadObjectOutput {
        content_length: Some(content_length as i64),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&meta.etag)),
        last_modified: Some(timestamp(meta.last_modified)),
        content_type: attrs
            .content_type
            .or_else(|| Some("binary/octet-stream".into())),
        content_encoding: attrs.content_encoding,
        content_disposition: attrs.content_disposition,
        content_language: attrs.content_language,
        cache_control: attrs.cache_control,
        expires: attrs.expires.as_deref().and_then(parse_http_date),
        metadata: Some(attrs.user_metadata.into_iter().collect()),
        ..Default::default()
    };
    set_checksums!(output, checksums);
    Ok(S3Response::new(output))
}

pub(super) async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = &req.input;
    gw.backend
        .delete(&input.bucket, &input.key)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub(super) async fn delete_many(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let input = req.input;
    let objects = input.delete.objects;
    if objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "DeleteObjects accepts at most 1000 keys, got {}",
            objects.len()
        ));
    }
    gw.backend.head_bucket(&input.bucket).await.map_err(to_s3)?;
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for object in objects {
        match gw.backend.delete(&input.bucket, &object.key).await {
            Ok(()) if quiet => {}
            Ok(()) => deleted.push(DeletedObject {
                key: Some(object.key),
                ..Default::default()
            }),
            Err(e) => {
                let e = to_s3(e);
                errors.push(Error {
                    key: Some(object.key),
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    ..Default::default()
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        ..Default::default()
    }))
}

/// The bucket and key of a copy source.
pub(super) fn copy_source(source: &CopySource) -> S3Result<(&str, &str)> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => {
            if version_id.as_deref().is_some_and(|v| v != "null") {
                return Err(s3_error!(NoSuchVersion, "this gateway keeps no versions"));
            }
            Ok((bucket, key))
        }
        _ => Err(s3_error!(
            NotImplemented,
            "access point copy sources are not supported"
        )),
    }
}

pub(super) async fn copy(
    gw: &Gateway,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    let (src_bucket, src_key) = copy_source(&input.copy_source)?;
    let source = gw.backend.head(src_bucket, src_key).await.map_err(to_s3)?;
    source_conditions(&input, &source)?;
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if !replace && src_bucket == input.bucket && src_key == input.key {
        return Err(s3_error!(
            InvalidRequest,
            "copying an object onto itself needs MetadataDirective REPLACE"
        ));
    }
    let attrs = replace.then(|| {
        let mut attrs = attrs_from!(input);
        // The bytes do not change, so their checksums still hold.
        attrs.checksums = source.attrs.checksums.clone();
        attrs
    });
    let meta = gw
        .backend
        .copy((src_bucket, src_key), (&input.bucket, &input.key), attrs)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(timestamp(meta.last_modified)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

fn source_conditions(input: &CopyObjectInput, source: &ObjectMeta) -> S3Result<()> {
    ReadConditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    }
    .check(source, false)
}
