//! `ferry init`: creates the drive layout ([`ferry_etl::layout`]) in a local folder or a
//! OneDrive folder. It can run any number of times: a folder or README already there is
//! kept as it is, so people's edits survive.

use std::path::Path;

use anyhow::Context as _;
use ferry_etl::layout::{FILES, FOLDERS};
use ferry_graph::{Conflict, GraphClient};

use crate::config::state_dir;
use crate::sync::{RootArgs, SourceKind};

/// What init did with one path.
enum Outcome {
    Created,
    Kept,
}

pub async fn run(args: RootArgs, file: &crate::config::File) -> anyhow::Result<()> {
    let (place, done) = match args.source {
        SourceKind::Local => {
            let root = args.local_root()?;
            (root.display().to_string(), init_local(&root)?)
        }
        SourceKind::Onedrive => {
            let config = crate::onedrive::graph_config(file)?;
            let graph = GraphClient::new(&config)?;
            let root = args.drive_root.trim_matches('/').to_owned();
            let done = init_onedrive(&graph, &root).await?;
            (format!("{} /{root}", config.drive.path()), done)
        }
    };
    for (path, outcome) in &done {
        let what = match outcome {
            Outcome::Created => "created",
            Outcome::Kept => "kept   ",
        };
        println!("{what} {path}");
    }
    let created = done
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Created))
        .count();
    println!(
        "\nThe layout is in place in {place} ({created} created, {} already there).\n\
         A dataset goes in datasets/<name>/<version>/, with a README.md made from\n\
         {}; `ferry sync` loads it.",
        done.len() - created,
        ferry_etl::layout::DATASET_TEMPLATE,
    );
    Ok(())
}

fn init_local(root: &Path) -> anyhow::Result<Vec<(String, Outcome)>> {
    let mut done = Vec::new();
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    for folder in FOLDERS {
        let path = root.join(folder);
        let outcome = match std::fs::create_dir(&path) {
            Ok(()) => Outcome::Created,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {
                Outcome::Kept
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        };
        done.push((format!("{folder}/"), outcome));
    }
    for (name, body) in FILES {
        let path = root.join(name);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, body.as_bytes()));
        let outcome = match created {
            Ok(()) => Outcome::Created,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Outcome::Kept,
            Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
        };
        done.push((name.to_owned(), outcome));
    }
    Ok(done)
}

async fn init_onedrive(graph: &GraphClient, root: &str) -> anyhow::Result<Vec<(String, Outcome)>> {
    let mut done = Vec::new();
    for folder in FOLDERS {
        let path = format!("{root}/{folder}");
        let outcome = if exists(graph, &path).await? {
            Outcome::Kept
        } else {
            graph
                .create_folders(&path)
                .await
                .with_context(|| format!("cannot create /{path}"))?;
            Outcome::Created
        };
        done.push((format!("{folder}/"), outcome));
    }
    // Uploads go from a private scratch file.
    let scratch = state_dir()?.join("staging").join("init.upload");
    for (name, body) in FILES {
        let path = format!("{root}/{name}");
        if exists(graph, &path).await? {
            done.push((name.to_owned(), Outcome::Kept));
            continue;
        }
        ferry_private::write(&scratch, body.as_bytes())
            .with_context(|| format!("cannot write {}", scratch.display()))?;
        let sent = graph.upload_file(&scratch, &path, Conflict::Fail).await;
        let _ = std::fs::remove_file(&scratch);
        let outcome = match sent {
            Ok(_) => Outcome::Created,
            // Written by someone else since we looked: theirs stays.
            Err(e) if e.graph_code() == Some("nameAlreadyExists") => Outcome::Kept,
            Err(e) => return Err(e).with_context(|| format!("cannot upload /{path}")),
        };
        done.push((name.to_owned(), outcome));
    }
    Ok(done)
}

async fn exists(graph: &GraphClient, path: &str) -> anyhow::Result<bool> {
    match graph.item_by_path(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.graph_code() == Some("itemNotFound") => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot look up /{path}")),
    }
}
