//! The drive layout `ferry init` creates: the seed's four folders under one root, each with
//! a README saying what goes there, and a dataset README template whose `toml contract`
//! block [`crate::contract`] reads.

/// The folders, in the order they are created.
pub const FOLDERS: [&str; 4] = ["datasets", "model-checkpoints", "etl-staging", "reports"];

/// The template a dataset's README starts from.
pub const DATASET_TEMPLATE: &str = "datasets/DATASET_README_TEMPLATE.md";

/// Every file of the layout: (path under the root, contents).
pub const FILES: [(&str, &str); 6] = [
    ("README.md", include_str!("../layout/README.md")),
    (
        "datasets/README.md",
        include_str!("../layout/datasets/README.md"),
    ),
    (
        DATASET_TEMPLATE,
        include_str!("../layout/datasets/DATASET_README_TEMPLATE.md"),
    ),
    (
        "model-checkpoints/README.md",
        include_str!("../layout/model-checkpoints/README.md"),
    ),
    (
        "etl-staging/README.md",
        include_str!("../layout/etl-staging/README.md"),
    ),
    (
        "reports/README.md",
        include_str!("../layout/reports/README.md"),
    ),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::contract::Contract;
    use crate::dataset::{Kind, classify};

    #[test]
    fn the_template_holds_a_contract_that_parses() {
        let template = FILES
            .iter()
            .find(|(p, _)| *p == DATASET_TEMPLATE)
            .unwrap()
            .1;
        let contract = Contract::from_readme(template).unwrap().unwrap();
        assert_eq!(contract.max_reject_rate, Some(0.1));
        assert!(
            contract.columns.is_empty(),
            "its example columns are commented out"
        );
        let filled = template.replace("# id = ", "id = ");
        let contract = Contract::from_readme(&filled).unwrap().unwrap();
        assert_eq!(contract.columns[0].name, "id");
    }

    #[test]
    fn every_file_is_in_a_folder_of_the_layout_and_none_is_data() {
        for (path, body) in FILES {
            let folder = path.split_once('/').map(|(f, _)| f);
            assert!(folder.is_none_or(|f| FOLDERS.contains(&f)), "{path}");
            assert!(!matches!(classify(path), Kind::Data(_)), "{path}");
            assert!(body.starts_with("# "), "{path}");
        }
    }
}
