//! `ferry quickstart`: the embedded default. Puts a sample dataset in a local folder (in
//! ferry's state dir unless `--root` says otherwise), syncs it into Postgres (the managed
//! cluster unless a database is configured), serves the folder as S3 and prints how to
//! reach both.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ferry_store::{Backend, BackendExt, LocalBackend, ObjectAttrs};

use crate::cli::S3Args;
use crate::config::{File, S3Settings, Store, state_dir};

const SAMPLE_BUCKET: &str = "datasets";
const SAMPLE_KEY: &str = "sample/2024-06-01/train.csv";
const SAMPLE_CSV: &str =
    "id,text,label\n1,the market rallied,up\n2,rates held steady,flat\n3,futures slipped,down\n";

pub async fn run(mut args: S3Args, file: &File) -> anyhow::Result<()> {
    let state = state_dir()?;
    fs::create_dir_all(&state).with_context(|| format!("cannot create {}", state.display()))?;
    if args.root.is_none() && file.s3.root.is_none() {
        args.root = Some(state.join("drive"));
    }
    let has_env_key = std::env::var_os("FERRY_S3_ACCESS_KEY_ID").is_some();
    if !has_env_key && args.credentials_file.is_none() && file.s3.credentials_file.is_none() {
        args.credentials_file = Some(ensure_credentials(&state.join("s3-credentials"))?);
    }
    let settings = S3Settings::resolve(args, file)?;
    let Store::Folder(root) = settings.store.clone() else {
        anyhow::bail!("quickstart serves a local folder, not --onedrive");
    };
    seed(&root).await?;
    let loaded = load(&root, &state).await?;
    let access_key = settings
        .keys
        .first()
        .map(|k| k.id.clone())
        .or_else(|| {
            let path = settings.credentials_file.as_deref()?;
            let keys = ferry_s3::read_credentials_file(path).ok()?;
            keys.first().map(|k| k.id.clone())
        })
        .unwrap_or_default();
    let (secret_where, secret_shell) = match &settings.credentials_file {
        Some(path) if !has_env_key => (
            format!("in {} (after the colon; mode 0600)", path.display()),
            format!("\"$(cut -d: -f2- {})\"", path.display()),
        ),
        _ => (
            "the one you set in the environment".to_owned(),
            "\"$FERRY_S3_SECRET_ACCESS_KEY\"".to_owned(),
        ),
    };
    crate::serve::run(settings, file, move |addr| {
        print_banner(&root, addr, &access_key, &secret_where, &secret_shell);
        println!("{loaded}");
    })
    .await
}

/// Syncs the folder's datasets into the database; returns what to tell the user.
async fn load(root: &Path, state: &Path) -> anyhow::Result<String> {
    let mut client = crate::db::connect_migrated().await?;
    let options = ferry_etl::Options {
        manifest_dir: Some(state.join("staging").join("manifests")),
        ..ferry_etl::Options::default()
    };
    let report = ferry_etl::sync(
        &mut client,
        &ferry_etl::Source::Local(ferry_etl::LocalSource::new(root)),
        &options,
    )
    .await?;
    let table = report
        .files
        .iter()
        .find_map(|f| f.target_table.clone())
        .unwrap_or_default();
    let (schema, name) = table.split_once('.').unwrap_or(("ai_raw_csv", &table));
    Ok(format!(
        "Synced into Postgres (run {}: {} file(s) loaded, {} row(s)); the datasets are tables:\n\
         \n\
         ferry db psql -c 'SELECT * FROM {schema}.\"{name}\"'\n\
         ferry db psql -c 'SELECT id, status, files_loaded, rows_loaded FROM ferry.etl_runs'\n\
         \n\
         Postgres keeps running after Ctrl-C; `ferry db stop` stops it.\n",
        report.run_id, report.files_loaded, report.rows_loaded
    ))
}

/// Creates a credentials file with a random key pair unless one exists; returns its path.
fn ensure_credentials(path: &Path) -> anyhow::Result<PathBuf> {
    if path.exists() {
        return Ok(path.to_owned());
    }
    let id = format!("ferry-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    ferry_private::create_new(path, format!("{id}:{secret}\n").as_bytes())
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(path.to_owned())
}

/// Puts the sample object in place unless the bucket already exists.
async fn seed(root: &Path) -> anyhow::Result<()> {
    let backend = LocalBackend::open(root)?;
    if backend.head_bucket(SAMPLE_BUCKET).await.is_ok() {
        return Ok(());
    }
    backend.create_bucket(SAMPLE_BUCKET).await?;
    let attrs = ObjectAttrs {
        content_type: Some("text/csv".into()),
        ..ObjectAttrs::default()
    };
    backend
        .put_bytes(SAMPLE_BUCKET, SAMPLE_KEY, SAMPLE_CSV, attrs)
        .await?;
    Ok(())
}

fn print_banner(
    root: &Path,
    addr: std::net::SocketAddr,
    access_key: &str,
    secret_where: &str,
    secret: &str,
) {
    let endpoint = format!("http://{addr}");
    println!(
        "\nferry is serving {root} as S3 at {endpoint}\n\
         \n\
         access key id:  {access_key}\n\
         secret key:     {secret_where}\n\
         \n\
         Try it (copy and paste into another shell):\n\
         \n\
         export AWS_ACCESS_KEY_ID={access_key}\n\
         export AWS_SECRET_ACCESS_KEY={secret}\n\
         export AWS_DEFAULT_REGION=us-east-1\n\
         aws --endpoint-url {endpoint} s3 ls s3://{SAMPLE_BUCKET} --recursive\n\
         python3 -c \"import boto3; s3 = boto3.client('s3', endpoint_url='{endpoint}'); \
         print(s3.get_object(Bucket='{SAMPLE_BUCKET}', Key='{SAMPLE_KEY}')['Body'].read().decode())\"\n\
         \n\
         Press Ctrl-C to stop the gateway.\n",
        root = root.display(),
    );
}
