//! Graph's JSON, as documented: DriveItem and its facets, drives, pages, upload sessions.
//! Fields the client does not use are ignored; absent ones are `None`.

use serde::Deserialize;

/// A file or folder (or a deleted one, in delta).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DriveItem {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub e_tag: Option<String>,
    pub c_tag: Option<String>,
    pub size: Option<u64>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub parent_reference: Option<ItemReference>,
    pub file: Option<FileFacet>,
    pub folder: Option<FolderFacet>,
    pub root: Option<serde_json::Value>,
    pub deleted: Option<DeletedFacet>,
    pub file_system_info: Option<FileSystemInfo>,
    #[serde(rename = "@microsoft.graph.downloadUrl")]
    pub download_url: Option<String>,
}

impl DriveItem {
    pub fn is_folder(&self) -> bool {
        self.folder.is_some() || self.root.is_some()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// The quickXorHash OneDrive computed, if it reports one.
    pub fn quick_xor_hash(&self) -> Option<&str> {
        self.file
            .as_ref()?
            .hashes
            .as_ref()?
            .quick_xor_hash
            .as_deref()
    }

    pub fn parent_id(&self) -> Option<&str> {
        self.parent_reference.as_ref()?.id.as_deref()
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ItemReference {
    pub drive_id: Option<String>,
    pub drive_type: Option<String>,
    pub id: Option<String>,
    /// `/drive/root:/a/b`; absent in delta responses.
    pub path: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileFacet {
    pub mime_type: Option<String>,
    pub hashes: Option<Hashes>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Hashes {
    pub quick_xor_hash: Option<String>,
    pub sha1_hash: Option<String>,
    pub sha256_hash: Option<String>,
    pub crc32_hash: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FolderFacet {
    pub child_count: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct DeletedFacet {
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileSystemInfo {
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
}

/// A drive and its quota.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Drive {
    pub id: String,
    pub drive_type: Option<String>,
    pub quota: Option<Quota>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Quota {
    pub total: Option<u64>,
    pub used: Option<u64>,
    pub remaining: Option<u64>,
    pub deleted: Option<u64>,
    /// `normal`, `nearing`, `critical` or `exceeded`.
    pub state: Option<String>,
}

/// One page of a collection; follow `next_link` verbatim, keep `delta_link` for next time.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

/// An upload session: fragments go to `upload_url`, which needs no token. The answer to a
/// fragment (202) has the same shape without `uploadUrl`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UploadSession {
    #[serde(default)]
    pub upload_url: String,
    pub expiration_date_time: Option<String>,
    #[serde(default)]
    pub next_expected_ranges: Vec<String>,
}

#[cfg(test)]
mod fixture_tests {
    //! Responses shaped exactly like Microsoft's documented examples.

    use super::*;
    use crate::error::{Error, IdentityErrorBody, graph_error};

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/", $name))
        };
    }

    #[test]
    fn drive_item_with_file_facet() {
        let item: DriveItem = serde_json::from_str(fixture!("driveitem_file.json")).unwrap();
        assert_eq!(item.name, "train.csv");
        assert_eq!(item.size, Some(35212));
        assert_eq!(item.quick_xor_hash(), Some("SgAAAAAAAAAAAAAAAQAAAAAAAAA="));
        assert_eq!(item.parent_id(), Some("01BYE5RZ56Y2GOVW7725BZO354PWSELRRZ"));
        let parent = item.parent_reference.as_ref().unwrap();
        assert_eq!(
            parent.path.as_deref(),
            Some("/drive/root:/DynamicCapital/ai-training/datasets")
        );
        assert!(item.download_url.is_some());
        assert!(!item.is_folder() && !item.is_deleted());
    }

    #[test]
    fn delta_page_with_a_deleted_item_and_no_paths() {
        let page: Page<DriveItem> = serde_json::from_str(fixture!("delta_page.json")).unwrap();
        assert!(page.next_link.is_none());
        assert!(page.delta_link.as_deref().unwrap().contains("delta(token="));
        assert_eq!(page.value.len(), 3);
        assert!(page.value[0].is_folder());
        assert!(page.value[2].is_deleted());
        assert!(
            page.value
                .iter()
                .all(|i| i.parent_reference.as_ref().unwrap().path.is_none())
        );
    }

    #[test]
    fn children_page_with_next_link() {
        let page: Page<DriveItem> = serde_json::from_str(fixture!("children_page.json")).unwrap();
        assert!(page.next_link.unwrap().contains("$skiptoken="));
        assert_eq!(page.value.len(), 2);
    }

    #[test]
    fn upload_session_and_fragment_answer() {
        let session: UploadSession = serde_json::from_str(fixture!("upload_session.json")).unwrap();
        assert_eq!(session.next_expected_ranges, ["0-"]);
        // The 202 after a fragment: no uploadUrl.
        let status: UploadSession = serde_json::from_str(
            r#"{"expirationDateTime": "2024-06-03T10:00:00.000Z", "nextExpectedRanges": ["26-"]}"#,
        )
        .unwrap();
        assert_eq!(status.next_expected_ranges, ["26-"]);
    }

    #[test]
    fn graph_errors_with_either_inner_spelling() {
        let err = graph_error(429, None, None, fixture!("error_throttled.json").as_bytes());
        assert_eq!(err.graph_code(), Some("activityLimitReached"));
        assert!(err.has_code("throttledRequest") && err.has_code("appThrottled"));
        assert!(
            matches!(&err, Error::Graph { request_id: Some(id), .. } if id.starts_with("7a9c"))
        );
        let err = graph_error(
            410,
            None,
            None,
            fixture!("error_lowercase_inner.json").as_bytes(),
        );
        assert_eq!(err.graph_code(), Some("resyncRequired"));
        assert!(err.has_code("resyncChangesApplyDifferences"));
        let err = graph_error(502, None, None, b"<html>bad gateway</html>");
        assert_eq!(err.status(), Some(502));
    }

    #[test]
    fn identity_errors_keep_codes_and_drop_trace_lines() {
        let body: IdentityErrorBody =
            serde_json::from_str(fixture!("token_error_bad_secret.json")).unwrap();
        let err = Error::from(body);
        let Error::Identity {
            error,
            description,
            aadsts,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(error, "invalid_client");
        assert_eq!(aadsts, &[7000215]);
        assert!(description.starts_with("Invalid client secret provided"));
        assert!(!err.to_string().contains("Trace ID"));
    }

    #[test]
    fn token_response() {
        let response: crate::auth::TokenResponseForTests =
            serde_json::from_str(fixture!("token_success.json")).unwrap();
        assert_eq!(response.expires_in, 4734);
        assert!(response.refresh_token.is_some());
    }
}
