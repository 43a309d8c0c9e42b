//! OOM-kill events: one inotify instance watches every container's `memory.events`.
//!
//! The kernel notifies a modification of `memory.events` whenever one of its counters moves;
//! the watcher rereads the file and queues an OomKilled event when `oom_kill` went up. No
//! polling loop: the thread sleeps in read(2) on the inotify descriptor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use lcow_protocol::agent::{Event, OomKilled};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::cgroup::parse_flat_keyed;
use crate::events::EventQueue;

/// Errors of the OOM watcher.
#[derive(Debug, thiserror::Error)]
pub enum OomError {
    /// inotify_init1 failed.
    #[error("failed to create the inotify instance")]
    Init(#[source] Errno),
    /// Adding a watch failed.
    #[error("failed to watch {path}")]
    Watch {
        /// The watched file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Errno,
    },
}

/// The `oom_kill` counter of a `memory.events` text.
pub fn oom_kill_count(memory_events: &str) -> u64 {
    parse_flat_keyed(memory_events)
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

#[derive(Debug)]
struct Watched {
    container_id: String,
    path: PathBuf,
    last: u64,
}

/// The watcher: register containers with [`OomWatcher::watch`], forget them with
/// [`OomWatcher::unwatch`].
#[derive(Debug)]
pub struct OomWatcher {
    inotify: Inotify,
    watched: Mutex<HashMap<WatchDescriptor, Watched>>,
    events: Arc<EventQueue>,
}

impl OomWatcher {
    /// Creates the watcher and its thread.
    pub fn start(events: Arc<EventQueue>) -> Result<Arc<Self>, OomError> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(OomError::Init)?;
        let watcher = Arc::new(Self {
            inotify,
            watched: Mutex::new(HashMap::new()),
            events,
        });
        let w = Arc::clone(&watcher);
        if let Err(err) = std::thread::Builder::new()
            .name("oom".into())
            .spawn(move || w.run())
        {
            tracing::error!(%err, "cannot start the OOM watcher thread");
        }
        Ok(watcher)
    }

    /// Watches the `memory.events` of the cgroup at `cgroup_dir` for `container_id`.
    pub fn watch(&self, container_id: &str, cgroup_dir: &Path) -> Result<(), OomError> {
        let path = cgroup_dir.join("memory.events");
        let last = std::fs::read_to_string(&path)
            .map(|t| oom_kill_count(&t))
            .unwrap_or(0);
        let wd = self
            .inotify
            .add_watch(&path, AddWatchFlags::IN_MODIFY)
            .map_err(|source| OomError::Watch {
                path: path.clone(),
                source,
            })?;
        self.lock().insert(
            wd,
            Watched {
                container_id: container_id.to_owned(),
                path,
                last,
            },
        );
        Ok(())
    }

    /// Stops watching a container (before its cgroup is removed).
    pub fn unwatch(&self, container_id: &str) {
        let mut watched = self.lock();
        let wds: Vec<WatchDescriptor> = watched
            .iter()
            .filter(|(_, w)| w.container_id == container_id)
            .map(|(wd, _)| *wd)
            .collect();
        for wd in wds {
            watched.remove(&wd);
            // Fails harmlessly when the kernel already dropped the watch (cgroup removed).
            let _ = self.inotify.rm_watch(wd);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WatchDescriptor, Watched>> {
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rereads the file behind `wd`; returns the container when `oom_kill` went up.
    fn check(&self, wd: WatchDescriptor) -> Option<String> {
        let mut watched = self.lock();
        let w = watched.get_mut(&wd)?;
        let count = oom_kill_count(&std::fs::read_to_string(&w.path).ok()?);
        if count > w.last {
            w.last = count;
            Some(w.container_id.clone())
        } else {
            None
        }
    }

    fn run(&self) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(ev) => ev,
                Err(Errno::EINTR) => continue,
                Err(err) => {
                    tracing::error!(%err, "OOM watcher: inotify read failed; OOM events stop");
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.lock().remove(&ev.wd);
                    continue;
                }
                if let Some(container_id) = self.check(ev.wd) {
                    tracing::warn!(%container_id, "OOM kill in container");
                    let mut event = Event::new();
                    event.set_oom(OomKilled {
                        container_id,
                        ..Default::default()
                    });
                    self.events.push(event);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_oom_kill_count_parses_memory_events() {
        assert_eq!(
            oom_kill_count("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n"),
            2
        );
        assert_eq!(oom_kill_count(""), 0);
    }

    #[test]
    fn test_oom_watcher_queues_event_when_oom_kill_increases() {
        // Arrange: a fake cgroup dir; a plain file also reports IN_MODIFY.
        let d = tempfile::tempdir().unwrap();
        let events = d.path().join("memory.events");
        std::fs::write(&events, "oom 0\noom_kill 0\n").unwrap();
        let queue = Arc::new(EventQueue::default());
        let watcher = OomWatcher::start(Arc::clone(&queue)).unwrap();
        watcher.watch("c1", d.path()).unwrap();
        // Act: a change that is not an OOM kill, then one that is.
        std::fs::write(&events, "oom 1\noom_kill 0\n").unwrap();
        std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
        // Assert
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let got = queue.pop(&|| std::time::Instant::now() > deadline).unwrap();
        assert_eq!(got.oom().container_id, "c1");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(queue.len(), 0, "a non-kill change queued an event");
        watcher.unwatch("c1");
    }
}
