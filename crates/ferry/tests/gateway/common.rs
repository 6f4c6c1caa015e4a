use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use ferry_testkit::{Gateway, GatewayBuilder};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferry");

pub fn gateway() -> Gateway {
    Gateway::start(BIN)
}

pub fn builder() -> GatewayBuilder {
    GatewayBuilder::new(BIN)
}

pub fn client_for(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    client_with(endpoint, access_key, secret_key, http)
}

pub fn client_with(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    http: aws_sdk_s3::config::SharedHttpClient,
) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .force_path_style(true)
        .http_client(http)
        .build();
    Client::from_conf(config)
}

pub fn client(gw: &Gateway) -> Client {
    client_for(&gw.endpoint, &gw.access_key, &gw.secret_key)
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// The S3 error code of a failed SDK call.
pub fn code<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("not a service error: {err:?}"))
}

pub async fn body(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// `len` bytes that differ with `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Starts a multipart upload of `bucket/key`; returns its id.
pub async fn start_upload(s3: &Client, bucket: &str, key: &str) -> String {
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    upload.upload_id().unwrap().to_owned()
}

/// Uploads part `n`; returns its ETag.
pub async fn put_part(
    s3: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    n: i32,
    data: Vec<u8>,
) -> String {
    let out = s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(aws_sdk_s3::primitives::ByteStream::from(data))
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().to_owned()
}

/// The CompleteMultipartUpload body for `(part number, ETag)` pairs.
pub fn completed(parts: &[(i32, String)]) -> aws_sdk_s3::types::CompletedMultipartUpload {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
                .collect(),
        ))
        .build()
}
