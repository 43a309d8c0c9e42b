//! The agent's state: configuration, the container table and the shared pieces (process
//! table, events, pending stdio, spawn lock, OOM watcher) every RPC works with.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::copy::IoHandle;
use crate::error::AgentError;
use crate::events::EventQueue;
use crate::guest_mounts::SharedMounts;
use crate::oom::OomWatcher;
use crate::reaper::{ProcessTable, SpawnLock};
use crate::runtime::Runtime;
use crate::stdio::{PendingStdio, Stream};
use crate::syscall::Syscall;

/// What Shutdown does once its reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownAction {
    /// reboot(RB_POWER_OFF): the agent is PID 1 of the VM.
    PowerOff,
    /// Exit the process: the agent runs outside a VM (tests, `--listen`).
    Exit,
}

/// Where things are and how the guest behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bundles: `<run_dir>/<id>/config.json`.
    pub run_dir: PathBuf,
    /// libcontainer's state root.
    pub state_root: PathBuf,
    /// Console sockets (short paths: unix socket paths are limited to 108 bytes).
    pub tty_dir: PathBuf,
    /// Where cgroup v2 is mounted.
    pub cgroup_root: PathBuf,
    /// The rootfs of containers created with an empty `rootfs` (a test initramfs's).
    pub default_rootfs: PathBuf,
    /// Use MS_MOVE + chroot instead of pivot_root: the agent's `/` is the initramfs, from
    /// which pivot_root(2) cannot move away (see `init::root_is_initramfs`).
    pub no_pivot: bool,
    /// What Shutdown does.
    pub shutdown: ShutdownAction,
}

impl Config {
    /// The guest's layout.
    pub fn guest(no_pivot: bool, shutdown: ShutdownAction) -> Self {
        Self {
            run_dir: PathBuf::from("/run/lcow"),
            state_root: PathBuf::from("/run/lcow/state"),
            tty_dir: PathBuf::from("/run/lcow/tty"),
            cgroup_root: PathBuf::from(crate::cgroup::CGROUP_ROOT),
            default_rootfs: PathBuf::from("/testroot"),
            no_pivot,
            shutdown,
        }
    }
}

/// Where a container is in its life, as far as the agent's calls go. Whether its init still
/// runs is the process table's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// CreateContainer is running.
    Creating,
    /// Created; the init process waits for StartProcess.
    Created,
    /// StartProcess succeeded.
    Started,
    /// RemoveContainer is running.
    Removing,
}

/// One container.
#[derive(Debug)]
pub struct ContainerEntry {
    /// Its id.
    pub id: String,
    /// Its cgroup directory.
    pub cgroup_dir: PathBuf,
    /// Its bundle directory.
    pub bundle_dir: PathBuf,
    /// Its phase.
    pub phase: Mutex<Phase>,
    /// Guest mounts made for it, in order.
    pub mounts: Mutex<Vec<PathBuf>>,
    /// The stdio of its processes, by exec id ("" for init).
    pub io: Mutex<HashMap<String, Arc<IoHandle>>>,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ContainerEntry {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        *lock(&self.phase)
    }

    /// Sets the phase.
    pub fn set_phase(&self, p: Phase) {
        *lock(&self.phase) = p;
    }

    /// Moves to `to` when the phase is one of `from`; otherwise returns the phase found.
    pub fn transition(&self, from: &[Phase], to: Phase) -> Result<(), Phase> {
        let mut phase = lock(&self.phase);
        if from.contains(&phase) {
            *phase = to;
            Ok(())
        } else {
            Err(*phase)
        }
    }

    /// The stdio handle of a process.
    pub fn io(&self, exec_id: &str) -> Option<Arc<IoHandle>> {
        lock(&self.io).get(exec_id).cloned()
    }
}

/// Everything the RPCs share.
#[derive(Debug)]
pub struct Agent {
    /// Configuration.
    pub config: Config,
    /// Kernel-touching calls.
    pub sys: Arc<dyn Syscall>,
    /// The container runtime.
    pub runtime: Arc<dyn Runtime>,
    /// Containers by id.
    pub containers: Mutex<HashMap<String, Arc<ContainerEntry>>>,
    /// Processes and their exits.
    pub processes: Arc<ProcessTable>,
    /// Events for GetEvent.
    pub events: Arc<EventQueue>,
    /// Streams connected and not yet claimed.
    pub stdio: Arc<PendingStdio<Stream>>,
    /// Held around libcontainer calls.
    pub spawn: Arc<SpawnLock>,
    /// OOM-kill notifications, when inotify is available.
    pub oom: Option<Arc<OomWatcher>>,
    /// Guest mounts by target, shared by the containers that ask for the same one.
    pub guest_mounts: SharedMounts,
    /// Names console sockets and exec files.
    seq: AtomicU64,
}

impl Agent {
    /// An agent with empty tables.
    pub fn new(
        config: Config,
        sys: Arc<dyn Syscall>,
        runtime: Arc<dyn Runtime>,
        events: Arc<EventQueue>,
        oom: Option<Arc<OomWatcher>>,
    ) -> Self {
        Self {
            config,
            sys,
            runtime,
            containers: Mutex::new(HashMap::new()),
            guest_mounts: SharedMounts::default(),
            processes: Arc::default(),
            events,
            stdio: Arc::default(),
            spawn: Arc::default(),
            oom,
            seq: AtomicU64::new(0),
        }
    }

    /// A number never returned before (names console sockets and exec files).
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh console socket path.
    pub fn next_tty_path(&self) -> PathBuf {
        self.config
            .tty_dir
            .join(format!("{}.sock", self.next_seq()))
    }

    /// Checks a container id.
    pub fn check_container_id(id: &str) -> Result<(), AgentError> {
        if lcow_protocol::valid_id(id) {
            Ok(())
        } else {
            Err(AgentError::invalid_id("container", id))
        }
    }

    /// Checks an exec id; the empty one (init) is allowed when `allow_init`.
    pub fn check_exec_id(id: &str, allow_init: bool) -> Result<(), AgentError> {
        if (allow_init && id.is_empty()) || lcow_protocol::valid_id(id) {
            Ok(())
        } else {
            Err(AgentError::invalid_id("exec", id))
        }
    }

    /// The container with this (validated) id, unless it is being created or removed.
    pub fn container(&self, id: &str) -> Result<Arc<ContainerEntry>, AgentError> {
        Self::check_container_id(id)?;
        let entry = lock(&self.containers)
            .get(id)
            .cloned()
            .ok_or_else(|| AgentError::UnknownContainer(id.to_owned()))?;
        match entry.phase() {
            Phase::Creating => Err(AgentError::WrongState(format!(
                "container {id} is still being created"
            ))),
            Phase::Removing => Err(AgentError::WrongState(format!(
                "container {id} is being removed"
            ))),
            Phase::Created | Phase::Started => Ok(entry),
        }
    }

    /// Whether the container's init process has exited.
    pub fn init_exited(&self, id: &str) -> bool {
        self.processes.get(id, "").is_some_and(|r| r.exit.is_some())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_container_and_exec_ids_are_validated() {
        assert!(Agent::check_container_id("c1").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "a\0b",
            &"x".repeat(257),
        ] {
            let err = Agent::check_container_id(bad).unwrap_err();
            assert_eq!(err.code(), ttrpc::Code::INVALID_ARGUMENT, "{bad:?}");
        }
        assert!(Agent::check_exec_id("", true).is_ok());
        assert!(Agent::check_exec_id("", false).is_err());
        assert!(Agent::check_exec_id("e1", false).is_ok());
        assert!(Agent::check_exec_id("../e", true).is_err());
    }
}
