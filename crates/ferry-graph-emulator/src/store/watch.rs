//! Which entries of which folders changed on disk since the last request, from inotify, so a
//! request looks at only those instead of rescanning the drive (or a large folder).
//!
//! Every folder of the tree is watched (the watch is added before the folder is read, so
//! nothing slips between the two). A request first drains the pending events without
//! blocking: the kernel queues an event before the syscall that caused it returns, so an
//! edit finished before the request is always seen by it.

use std::collections::{HashMap, HashSet};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

/// What to rescan.
pub enum Changes {
    /// Folders (by item id) whose entries were added, removed, renamed or written: the
    /// names of those entries, or None to rescan the whole folder.
    Folders(HashMap<String, Option<HashSet<String>>>),
    /// The kernel dropped events: rescan the whole drive.
    All,
}

pub struct Watcher {
    fd: OwnedFd,
    /// Watch descriptor -> folder item id.
    folders: HashMap<i32, String>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("watches", &self.folders.len())
            .finish()
    }
}

impl Watcher {
    pub fn new() -> std::io::Result<Self> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        Ok(Watcher {
            fd,
            folders: HashMap::new(),
        })
    }

    /// Watches `dir` as folder `id`. Returns false if the same directory was already
    /// watched as that folder (its contents are known), true if it is new to us: a new
    /// folder, or a different directory now sitting at a known folder's path. A folder
    /// that cannot be watched (watch limit reached) is reported as new every time, so it
    /// is rescanned on every request rather than missed.
    pub fn watch(&mut self, id: &str, dir: &Path) -> bool {
        let flags = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MODIFY
            | WatchFlags::CLOSE_WRITE
            | WatchFlags::ATTRIB
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ONLYDIR
            | WatchFlags::DONT_FOLLOW
            | WatchFlags::EXCL_UNLINK;
        match inotify::add_watch(&self.fd, dir, flags) {
            Ok(wd) => self.folders.insert(wd, id.to_string()).as_deref() != Some(id),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot watch folder");
                true
            }
        }
    }

    /// The folders changed since the last call. `exists` tells whether a folder id is
    /// still in the tree; watches of folders that are gone are dropped.
    pub fn drain(&mut self, exists: impl Fn(&str) -> bool) -> Changes {
        let mut buf = [MaybeUninit::<u8>::uninit(); 16 * 1024];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut dirty: HashMap<String, Option<HashSet<String>>> = HashMap::new();
        let mut stale = Vec::new();
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(Errno::AGAIN | Errno::INTR) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "reading folder change events; rescanning");
                    return Changes::All;
                }
            };
            let mask = event.events();
            if mask.contains(ReadFlags::QUEUE_OVERFLOW) {
                return Changes::All;
            }
            if mask.contains(ReadFlags::IGNORED) {
                self.folders.remove(&event.wd());
                continue;
            }
            match self.folders.get(&event.wd()) {
                Some(id) if exists(id) => {
                    let name = event
                        .file_name()
                        .and_then(|n| n.to_str().ok())
                        .filter(|n| !n.is_empty());
                    let names = dirty
                        .entry(id.clone())
                        .or_insert_with(|| Some(HashSet::new()));
                    match (names.as_mut(), name) {
                        (Some(names), Some(name)) => {
                            names.insert(name.to_owned());
                        }
                        // An event about the folder itself: look at all of it.
                        _ => *names = None,
                    }
                }
                Some(_) => stale.push(event.wd()),
                None => {}
            }
        }
        for wd in stale {
            if self.folders.remove(&wd).is_some() {
                // The folder left the drive (deleted or moved out); stop watching it.
                let _ = inotify::remove_watch(&self.fd, wd);
            }
        }
        Changes::Folders(dirty)
    }
}
