//! Bucket operations: buckets are the top-level folders of the backend.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::{Gateway, timestamp};
use crate::error::to_s3;

/// The owner every bucket and object reports: a gateway has one namespace.
pub(super) fn owner() -> Owner {
    Owner {
        display_name: Some("ferry".into()),
        id: Some("ferry".into()),
    }
}

pub(super) async fn list(
    gw: &Gateway,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let buckets = gw.backend.list_buckets().await.map_err(to_s3)?;
    let buckets = buckets
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(timestamp(b.created)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        ..Default::default()
    }))
}

pub(super) async fn create(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    gw.backend
        .create_bucket(&req.input.bucket)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{}", req.input.bucket)),
    }))
}

pub(super) async fn delete(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    gw.backend
        .delete_bucket(&req.input.bucket)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(super) async fn head(
    gw: &Gateway,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    gw.backend
        .head_bucket(&req.input.bucket)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(gw.region.clone()),
        ..Default::default()
    }))
}

pub(super) async fn location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    gw.backend
        .head_bucket(&req.input.bucket)
        .await
        .map_err(to_s3)?;
    // S3 reports us-east-1 as an empty constraint.
    let location_constraint =
        (gw.region != "us-east-1").then(|| BucketLocationConstraint::from(gw.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint,
    }))
}

pub(super) async fn versioning(
    gw: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    gw.backend
        .head_bucket(&req.input.bucket)
        .await
        .map_err(to_s3)?;
    // Never enabled: the answer of a bucket that has never had versioning.
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}
