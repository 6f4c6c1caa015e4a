//! Conditional requests: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` on reads (RFC 9110 §13.2.2 order), and their write forms.

use std::time::SystemTime;

use ferry_store::{ObjectMeta, WriteCondition};
use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Result, s3_error};

/// The read conditions of a GET, HEAD or copy source.
#[derive(Debug, Default)]
pub(crate) struct ReadConditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == etag,
    }
}

/// Whole seconds, the precision of HTTP dates.
fn seconds(t: SystemTime) -> i64 {
    time::OffsetDateTime::from(t).unix_timestamp()
}

fn ts_seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

impl ReadConditions<'_> {
    /// `PreconditionFailed` (412) or, when `not_modified` applies, `NotModified` (304).
    /// Copy sources answer 412 where a GET would answer 304.
    pub fn check(&self, meta: &ObjectMeta, not_modified_status: bool) -> S3Result<()> {
        let modified = seconds(meta.last_modified);
        if let Some(c) = self.if_match {
            if !matches(c, &meta.etag) {
                return Err(s3_error!(
                    PreconditionFailed,
                    "If-Match does not match the ETag"
                ));
            }
        } else if let Some(t) = self.if_unmodified_since
            && modified > ts_seconds(t)
        {
            return Err(s3_error!(
                PreconditionFailed,
                "modified since If-Unmodified-Since"
            ));
        }
        let not_modified = if let Some(c) = self.if_none_match {
            matches(c, &meta.etag)
        } else {
            self.if_modified_since
                .is_some_and(|t| modified <= ts_seconds(t))
        };
        if not_modified {
            return Err(if not_modified_status {
                s3_error!(NotModified)
            } else {
                s3_error!(PreconditionFailed, "copy source condition not met")
            });
        }
        Ok(())
    }
}

/// The store condition for a write's `If-Match` / `If-None-Match` headers.
pub(crate) fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<WriteCondition>> {
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(s3_error!(
            InvalidRequest,
            "If-Match and If-None-Match cannot be combined on a write"
        )),
        (Some(ETagCondition::Any), None) => Ok(Some(WriteCondition::IfMatch("*".into()))),
        (Some(ETagCondition::ETag(tag)), None) => {
            Ok(Some(WriteCondition::IfMatch(tag.value().to_owned())))
        }
        (None, Some(ETagCondition::Any)) => Ok(Some(WriteCondition::IfNoneExists)),
        (None, Some(ETagCondition::ETag(_))) => Err(s3_error!(
            NotImplemented,
            "If-None-Match on a write accepts only '*'"
        )),
        (None, None) => Ok(None),
    }
}
