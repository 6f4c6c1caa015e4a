//! ListObjects (v1 and v2) and ListObjectVersions over the backend's ordered listing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferry_store::{ListEntry, ListOptions, ListPage, ObjectMeta};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::buckets::owner;
use super::{Gateway, etag, timestamp};
use crate::error::to_s3;

/// S3's page size when the client does not choose one, and its maximum.
const MAX_KEYS: usize = 1000;

/// `encoding-type=url` escapes everything but unreserved characters and `/`.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

struct Encoder(bool);

impl Encoder {
    fn new(encoding_type: Option<&EncodingType>) -> S3Result<Self> {
        match encoding_type.map(EncodingType::as_str) {
            None => Ok(Self(false)),
            Some(t) if t.eq_ignore_ascii_case(EncodingType::URL) => Ok(Self(true)),
            Some(_) => Err(s3_error!(InvalidArgument, "encoding-type must be 'url'")),
        }
    }

    fn apply(&self, s: &str) -> String {
        if self.0 {
            utf8_percent_encode(s, URL_ENCODE).to_string()
        } else {
            s.to_owned()
        }
    }

    fn opt(&self, s: Option<&str>) -> Option<String> {
        s.filter(|s| !s.is_empty()).map(|s| self.apply(s))
    }
}

fn max_keys(requested: Option<i32>) -> S3Result<usize> {
    match requested {
        None => Ok(MAX_KEYS),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok((n as usize).min(MAX_KEYS)),
    }
}

async fn page(
    gw: &Gateway,
    bucket: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    start_after: Option<String>,
    max_keys: usize,
) -> S3Result<ListPage> {
    let opts = ListOptions {
        prefix: prefix.unwrap_or_default().to_owned(),
        delimiter: delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
        start_after,
        max_keys,
    };
    gw.backend.list(bucket, &opts).await.map_err(to_s3)
}

/// Splits a page into objects and common prefixes, in order.
fn split(page: ListPage) -> (Vec<ObjectMeta>, Vec<String>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for entry in page.entries {
        match entry {
            ListEntry::Object(o) => objects.push(o),
            ListEntry::Prefix(p) => prefixes.push(p),
        }
    }
    (objects, prefixes)
}

fn object(meta: ObjectMeta, enc: &Encoder, with_owner: bool) -> Object {
    Object {
        key: Some(enc.apply(&meta.key)),
        size: Some(meta.size as i64),
        e_tag: Some(etag(&meta.etag)),
        last_modified: Some(timestamp(meta.last_modified)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner: with_owner.then(owner),
        ..Default::default()
    }
}

fn common_prefixes(prefixes: Vec<String>, enc: &Encoder) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc.apply(&p)),
        })
        .collect()
}

pub(super) async fn v1(
    gw: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = &req.input;
    let enc = Encoder::new(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let marker = input.marker.clone().filter(|m| !m.is_empty());
    let result = page(
        gw,
        &input.bucket,
        input.prefix.as_deref(),
        input.delimiter.as_deref(),
        marker.clone(),
        max,
    )
    .await?;
    let truncated = result.is_truncated;
    let last = result.entries.last().map(|e| e.name().to_owned());
    let (objects, prefixes) = split(result);
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket.clone()),
        prefix: Some(enc.apply(input.prefix.as_deref().unwrap_or_default())),
        delimiter: enc.opt(input.delimiter.as_deref()),
        marker: Some(enc.apply(marker.as_deref().unwrap_or_default())),
        // S3 sends NextMarker only with a delimiter; clients use the last key otherwise.
        next_marker: if truncated {
            enc.opt(last.as_deref())
        } else {
            None
        },
        max_keys: Some(max as i32),
        is_truncated: Some(truncated),
        encoding_type: input.encoding_type.clone(),
        contents: Some(objects.into_iter().map(|o| object(o, &enc, true)).collect()),
        common_prefixes: Some(common_prefixes(prefixes, &enc)),
        ..Default::default()
    }))
}

fn encode_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "the continuation token is not valid"))
}

pub(super) async fn v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = &req.input;
    let enc = Encoder::new(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let start_after = match input.continuation_token.as_deref() {
        Some(token) => Some(decode_token(token)?),
        None => input.start_after.clone().filter(|s| !s.is_empty()),
    };
    let result = page(
        gw,
        &input.bucket,
        input.prefix.as_deref(),
        input.delimiter.as_deref(),
        start_after,
        max,
    )
    .await?;
    let truncated = result.is_truncated;
    let next = truncated
        .then(|| result.entries.last().map(|e| encode_token(e.name())))
        .flatten();
    let key_count = result.entries.len() as i32;
    let (objects, prefixes) = split(result);
    let with_owner = input.fetch_owner.unwrap_or(false);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket.clone()),
        prefix: Some(enc.apply(input.prefix.as_deref().unwrap_or_default())),
        delimiter: enc.opt(input.delimiter.as_deref()),
        start_after: enc.opt(input.start_after.as_deref()),
        continuation_token: input.continuation_token.clone(),
        next_continuation_token: next,
        key_count: Some(key_count),
        max_keys: Some(max as i32),
        is_truncated: Some(truncated),
        encoding_type: input.encoding_type.clone(),
        contents: Some(
            objects
                .into_iter()
                .map(|o| object(o, &enc, with_owner))
                .collect(),
        ),
        common_prefixes: Some(common_prefixes(prefixes, &enc)),
        ..Default::default()
    }))
}

/// Every object once, as its only (`null`) version: this gateway keeps no versions.
pub(super) async fn versions(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let input = &req.input;
    let enc = Encoder::new(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let marker = input.key_marker.clone().filter(|m| !m.is_empty());
    let result = page(
        gw,
        &input.bucket,
        input.prefix.as_deref(),
        input.delimiter.as_deref(),
        marker.clone(),
        max,
    )
    .await?;
    let truncated = result.is_truncated;
    let last = result.entries.last().map(|e| e.name().to_owned());
    let (objects, prefixes) = split(result);
    let versions = objects
        .into_iter()
        .map(|o| ObjectVersion {
            key: Some(enc.apply(&o.key)),
            version_id: Some("null".into()),
            is_latest: Some(true),
            size: Some(o.size as i64),
            e_tag: Some(etag(&o.etag)),
            last_modified: Some(timestamp(o.last_modified)),
            storage_class: Some(ObjectVersionStorageClass::from_static(
                ObjectVersionStorageClass::STANDARD,
            )),
            owner: Some(owner()),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket.clone()),
        prefix: Some(enc.apply(input.prefix.as_deref().unwrap_or_default())),
        delimiter: enc.opt(input.delimiter.as_deref()),
        key_marker: Some(enc.apply(marker.as_deref().unwrap_or_default())),
        version_id_marker: input.version_id_marker.clone(),
        next_key_marker: if truncated {
            enc.opt(last.as_deref())
        } else {
            None
        },
        next_version_id_marker: truncated.then(|| "null".to_owned()),
        max_keys: Some(max as i32),
        is_truncated: Some(truncated),
        encoding_type: input.encoding_type.clone(),
        versions: Some(versions),
        common_prefixes: Some(common_prefixes(prefixes, &enc)),
        ..Default::default()
    }))
}
