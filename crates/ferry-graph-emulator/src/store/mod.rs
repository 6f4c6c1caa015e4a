//! Drives: each is a folder under the root plus a persisted item tree. All tree access
//! goes through [`Drive::run`], which serialises it, rescans what changed on disk and
//! saves changes.

pub mod hashing;
pub mod ids;
pub mod names;
pub mod ops;
mod persist;
pub mod scan;
pub mod tree;
mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{DriveType, EmulatorConfig};
use crate::error::Error;
use crate::state::SIDECAR;
pub use tree::Tree;

#[derive(Debug)]
pub struct Drive {
    pub id: String,
    pub drive_type: DriveType,
    pub owner: Option<String>,
    pub site: Option<String>,
    /// The drive's files.
    pub dir: PathBuf,
    pub quota_total: u64,
    pub report_deleted_descendants: bool,
    scan_disk: bool,
    state_file: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tree: Tree,
    /// Folder change events, when watching the disk (None: rescan it all every time).
    watcher: Option<watch::Watcher>,
    saved: Instant,
}

/// Saving writes the whole tree, so a changed tree is saved at most this often (by the next
/// request or the emulator's save tick), and at shutdown.
pub const SAVE_DELAY: Duration = Duration::from_secs(1);
/// Hashes computed on demand are a cache: saved with the next change, or after this.
const HASH_SAVE_DELAY: Duration = Duration::from_secs(5);

impl State {
    fn save_due(&self) -> bool {
        let since = self.saved.elapsed();
        (self.tree.dirty && since >= SAVE_DELAY)
            || (self.tree.hashes_dirty && since >= HASH_SAVE_DELAY)
    }
}

impl Drive {
    /// Runs `f` on the tree on a blocking thread (it touches the disk), after rescanning
    /// what changed on disk; saves the tree if `f` changed it.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&Drive, &mut Tree) -> T + Send + 'static,
    {
        let drive = self.clone();
        let task = tokio::task::spawn_blocking(move || drive.run_blocking(f));
        match task.await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    pub fn run_blocking<T>(&self, f: impl FnOnce(&Drive, &mut Tree) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        if self.scan_disk {
            scan::refresh(self, &mut state.tree, state.watcher.as_mut());
        }
        let out = f(self, &mut state.tree);
        if state.save_due() {
            self.save(state);
        }
        out
    }

    /// Watches the folder for changes and scans it once.
    fn start_watching(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        state.watcher = match watch::Watcher::new() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the drive folder; rescanning it on every request");
                None
            }
        };
        scan::reconcile(self, &mut state.tree, state.watcher.as_mut());
        if state.tree.dirty {
            self.save(state);
        }
    }

    fn save(&self, state: &mut State) {
        match persist::save(&self.state_file, &state.tree) {
            Ok(()) => {
                state.tree.dirty = false;
                state.tree.hashes_dirty = false;
                state.saved = Instant::now();
            }
            Err(e) => tracing::error!(drive = %self.id, error = %e, "saving drive state"),
        }
    }
}

impl Drive {
    /// Saves the tree if a save is due (see [`SAVE_DELAY`]).
    pub fn save_if_due(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.save_due() {
            self.save(&mut guard);
        }
    }

    /// Saves whatever is not saved yet; for shutdown.
    pub fn flush(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.tree.dirty || guard.tree.hashes_dirty {
            self.save(&mut guard);
        }
    }
}

#[derive(Debug)]
pub struct Drives {
    list: Vec<Arc<Drive>>,
}

impl Drives {
    pub fn open(config: &EmulatorConfig) -> Result<Self, Error> {
        let mut specs = config.drives.clone();
        for user in &config.users {
            let has = specs.iter().any(|d| {
                d.owner
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(&user.id))
            });
            if !has {
                specs.push(crate::config::DriveConfig {
                    id: None,
                    owner: Some(user.id.clone()),
                    site: None,
                    drive_type: None,
                    folder: None,
                    quota_total: None,
                });
            }
        }
        let mut list = Vec::new();
        for spec in specs {
            let drive_type = spec.drive_type.unwrap_or(if spec.site.is_some() {
                DriveType::DocumentLibrary
            } else {
                config.default_drive_type
            });
            let seed = spec
                .owner
                .clone()
                .or_else(|| spec.site.clone())
                .unwrap_or_default();
            let id = spec
                .id
                .clone()
                .unwrap_or_else(|| ids::drive_id(drive_type, &seed));
            let folder = spec.folder.clone().unwrap_or_else(|| id.clone());
            if folder == SIDECAR || folder.contains("..") {
                return Err(Error::Config(format!(
                    "drive folder '{folder}' is not allowed"
                )));
            }
            let dir = config.root.join(&folder);
            std::fs::create_dir_all(&dir).map_err(|source| Error::State {
                path: dir.clone(),
                source,
            })?;
            let state_file = config
                .root
                .join(SIDECAR)
                .join(format!("drive-{}.json", crate::util::b64url(id.as_bytes())));
            let tree = match persist::load(&state_file)? {
                Some(t) => t,
                None => Tree::new(ids::root_id(drive_type, &id), crate::util::now_secs()),
            };
            let drive = Drive {
                id,
                drive_type,
                owner: spec.owner,
                site: spec.site,
                dir,
                quota_total: spec.quota_total.unwrap_or(config.default_quota),
                report_deleted_descendants: config.delta_report_deleted_descendants,
                scan_disk: config.scan_disk,
                state_file,
                state: Mutex::new(State {
                    tree,
                    watcher: None,
                    saved: Instant::now(),
                }),
            };
            // Pick up what is already on disk (and save the ids) before serving.
            let drive = Arc::new(drive);
            if drive.scan_disk {
                drive.start_watching();
            } else {
                drive.run_blocking(|d, tree| scan::reconcile(d, tree, None));
            }
            list.push(drive);
        }
        Ok(Drives { list })
    }

    /// Saves every drive's unsaved state (see [`Drive::flush`]).
    pub fn flush(&self) {
        for drive in &self.list {
            drive.flush();
        }
    }

    /// Saves the drives whose save is due (see [`Drive::save_if_due`]).
    pub fn save_if_due(&self) {
        for drive in &self.list {
            drive.save_if_due();
        }
    }

    pub fn all(&self) -> &[Arc<Drive>] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<Arc<Drive>> {
        self.list
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(id))
            .cloned()
    }

    pub fn for_user(&self, user_id: &str) -> Option<Arc<Drive>> {
        self.list
            .iter()
            .find(|d| {
                d.owner
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(user_id))
            })
            .cloned()
    }

    pub fn for_site(&self, site: &str) -> Option<Arc<Drive>> {
        self.list
            .iter()
            .find(|d| {
                d.site
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(site))
            })
            .cloned()
    }
}
