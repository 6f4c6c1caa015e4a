//! Field-by-field copies between s3s's many alike DTOs.

/// The object attributes a write request carries; PutObject, CopyObject (with REPLACE) and
/// CreateMultipartUpload name them alike. Moves the fields out of `$input`.
macro_rules! attrs_from {
    ($input:ident) => {
        ferry_store::ObjectAttrs {
            content_type: $input.content_type,
            content_encoding: $input.content_encoding,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            expires: $input.expires.and_then(|t| super::fmt_http_date(&t)),
            user_metadata: $input
                .metadata
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            checksums: Default::default(),
        }
    };
}

/// Copies checksum values (an `s3s::dto::Checksum`) into the like-named fields of an output.
macro_rules! set_checksums {
    ($output:expr, $sums:expr) => {{
        let sums = $sums;
        $output.checksum_crc32 = sums.checksum_crc32;
        $output.checksum_crc32c = sums.checksum_crc32c;
        $output.checksum_crc64nvme = sums.checksum_crc64nvme;
        $output.checksum_sha1 = sums.checksum_sha1;
        $output.checksum_sha256 = sums.checksum_sha256;
    }};
}
