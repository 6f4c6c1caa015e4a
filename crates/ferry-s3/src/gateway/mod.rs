//! The S3 API over a [`Backend`]: s3s parses and authenticates requests, this module answers
//! them. Operations we do not support answer `NotImplemented` (s3s's default).

#[macro_use]
mod macros;
mod buckets;
mod listing;
pub(crate) mod multipart;
mod objects;
#[cfg(test)]
mod range_tests;
mod uploads;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use ferry_store::{Backend, ObjectWriter};
use futures::StreamExt;
use s3s::dto::{ETag, StreamingBlob, Timestamp};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, dto::*};

pub use self::uploads::Uploads;
use crate::error::to_s3;

/// The gateway: an S3 service over one backend.
#[derive(Debug, Clone)]
pub struct Gateway {
    backend: Arc<dyn Backend>,
    uploads: Uploads,
    region: String,
}

impl Gateway {
    /// Serves `backend`; multipart parts are kept in `uploads` until completed or aborted.
    pub fn new(backend: Arc<dyn Backend>, uploads: Uploads, region: impl Into<String>) -> Self {
        Self {
            backend,
            uploads,
            region: region.into(),
        }
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

pub(super) fn fmt_http_date(t: &Timestamp) -> Option<String> {
    let mut out = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut out).ok()?;
    String::from_utf8(out).ok()
}

fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// Streams a request body into a writer, feeding `on_chunk` with every chunk on the way.
/// Returns the number of bytes written. A body that fails (a client that disconnects, a
/// chunk signature that does not verify) fails the write, and the writer is dropped unsaved.
async fn pump(
    body: StreamingBlob,
    writer: &mut dyn ObjectWriter,
    mut on_chunk: impl FnMut(&Bytes),
) -> S3Result<u64> {
    let mut body = body;
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(body_error)?;
            on_chunk(&chunk);
            written += chunk.len() as u64;
            writer.write(chunk).await.map_err(to_s3)?;
        }
        Ok(())
    }
    .await;
    crate::server::note_body_bytes(written);
    result.map(|()| written)
}

/// A body stream error: an S3 error passes through; anything else means the body did not
/// arrive whole or did not verify.
fn body_error(err: s3s::StdError) -> S3Error {
    let err = match err.downcast::<S3Error>() {
        Ok(e) => return *e,
        Err(other) => other,
    };
    tracing::debug!(error = %err, "request body failed");
    // s3s does not export its aws-chunked error type, so its Display is all there is to go on.
    let text = err.to_string();
    let (code, message) = if text.contains("SignatureMismatch") {
        (
            S3ErrorCode::SignatureDoesNotMatch,
            "a chunk signature does not match; nothing was stored",
        )
    } else if text.starts_with("AwsChunkedStreamError") && !text.contains("Incomplete") {
        (
            S3ErrorCode::InvalidRequest,
            "the aws-chunked body is malformed; nothing was stored",
        )
    } else {
        (
            S3ErrorCode::IncompleteBody,
            "the request body ended before the announced length; nothing was stored",
        )
    };
    S3Error::with_message(code, message)
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        buckets::list(self, req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        buckets::create(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        buckets::delete(self, req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        buckets::head(self, req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        buckets::location(self, req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        buckets::versioning(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        listing::v1(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        listing::v2(self, req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        listing::versions(self, req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        objects::put(self, req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        objects::get(self, req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        objects::head(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        objects::delete(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        objects::delete_many(self, req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        objects::copy(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create(self, req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        multipart::upload_part_copy(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort(self, req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        multipart::list_uploads(self, req).await
    }
}
