//! Zombie reaping, the process table and the spawn lock.
//!
//! As PID 1 the agent is the parent of every container process (libcontainer clones the
//! container's init and exec'd processes as *siblings* of its intermediate process, so they are
//! our children) and of every orphan in the guest. A dedicated thread reaps them all:
//!
//! 1. it blocks in `waitid(P_ALL, WEXITED | WNOWAIT)`, which *observes* that some child has
//!    exited without reaping it;
//! 2. it takes the [`SpawnLock`], then reaps with `waitpid(-1, WNOHANG)` until nothing is left.
//!
//! libcontainer waits for its own intermediate processes (and hook processes) with
//! `waitpid(pid)`. Every libcontainer call runs under the spawn lock, so the reaper cannot steal
//! those children (Kata's agent does the same). The lock also covers registering the new pid in
//! the [`ProcessTable`], so an exit is never reaped before its pid is known.
//!
//! Why not signalfd: it needs SIGCHLD blocked in every thread, and blocked signals survive
//! `execve`. libcontainer does not reset the signal mask before exec'ing the container process,
//! so every container would start with SIGCHLD blocked. The thread above needs no signals.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lcow_protocol::agent::{Event, ExitStatus, ProcessExited};
use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::events::EventQueue;

/// How many exited exec'd processes a container keeps for WaitProcess before the oldest are
/// forgotten (the protocol has no call to delete an exec; health checks exec forever).
pub const MAX_EXITED_EXECS: usize = 256;

/// How a process ended, as the protocol reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// The reaped pid.
    pub pid: u32,
    /// The exit code, or 128 + the signal that killed it.
    pub exit_status: u32,
    /// The signal that killed it, or 0.
    pub signal: u32,
    /// When it was reaped, in nanoseconds since the Unix epoch.
    pub exited_at_ns: u64,
}

impl ExitInfo {
    /// The protocol message.
    pub fn to_proto(self) -> ExitStatus {
        ExitStatus {
            pid: self.pid,
            exit_status: self.exit_status,
            signal: self.signal,
            exited_at_ns: self.exited_at_ns,
            ..Default::default()
        }
    }
}

/// `(exit_status, signal)` of a wait status as a shell reports it; `None` for statuses that
/// are not an end (stopped, continued).
pub fn encode_wait_status(status: WaitStatus) -> Option<(Pid, u32, u32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid, u32::try_from(code & 0xff).unwrap_or(0), 0)),
        WaitStatus::Signaled(pid, signal, _core) => {
            let signal = signal as i32;
            let signal = u32::try_from(signal).unwrap_or(0);
            Some((pid, 128 + signal, signal))
        }
        _ => None,
    }
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A process of a container: the container's init has the empty exec id.
pub type ProcKey = (String, String);

/// What the table knows of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcRecord {
    /// Its pid in the agent's pid namespace.
    pub pid: i32,
    /// How it ended, once reaped.
    pub exit: Option<ExitInfo>,
    seq: u64,
}

/// Why [`ProcessTable::wait`] returned without an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// No such process (never registered, or its container was removed while waiting).
    Unknown,
    /// The caller went away.
    Cancelled,
}

#[derive(Debug, Default)]
struct TableInner {
    by_pid: HashMap<i32, ProcKey>,
    procs: HashMap<ProcKey, ProcRecord>,
    seq: u64,
}

/// Every process the agent started, by (container, exec) and by pid, with its exit status.
#[derive(Debug, Default)]
pub struct ProcessTable {
    inner: Mutex<TableInner>,
    exited: Condvar,
}

/// How often a blocked wait wakes to ask whether its caller is still there.
const CANCEL_POLL: Duration = Duration::from_millis(250);

impl ProcessTable {
    fn lock(&self) -> MutexGuard<'_, TableInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a new live process. Call it under the spawn lock, before releasing it.
    /// Replaces an exited record with the same key; forgets the oldest exited execs of the
    /// container beyond [`MAX_EXITED_EXECS`].
    pub fn register(&self, container_id: &str, exec_id: &str, pid: i32) {
        let mut t = self.lock();
        t.seq += 1;
        let seq = t.seq;
        let key = (container_id.to_owned(), exec_id.to_owned());
        if let Some(old) = t.procs.insert(
            key.clone(),
            ProcRecord {
                pid,
                exit: None,
                seq,
            },
        ) {
            if old.exit.is_none() {
                t.by_pid.remove(&old.pid);
            }
        }
        t.by_pid.insert(pid, key);

        let mut exited: Vec<(u64, ProcKey)> = t
            .procs
            .iter()
            .filter(|((c, e), r)| c == container_id && !e.is_empty() && r.exit.is_some())
            .map(|(k, r)| (r.seq, k.clone()))
            .collect();
        if exited.len() > MAX_EXITED_EXECS {
            exited.sort_unstable();
            let excess = exited.len() - MAX_EXITED_EXECS;
            for (_, k) in exited.into_iter().take(excess) {
                t.procs.remove(&k);
            }
        }
    }

    /// Records that `pid` ended; returns its key when the pid is one of ours.
    pub fn record_exit(
        &self,
        pid: i32,
        exit_status: u32,
        signal: u32,
        at_ns: u64,
    ) -> Option<(ProcKey, ExitInfo)> {
        let mut t = self.lock();
        let key = t.by_pid.remove(&pid)?;
        let info = ExitInfo {
            pid: u32::try_from(pid).unwrap_or(0),
            exit_status,
            signal,
            exited_at_ns: at_ns,
        };
        if let Some(rec) = t.procs.get_mut(&key) {
            rec.exit = Some(info);
        }
        drop(t);
        self.exited.notify_all();
        Some((key, info))
    }

    /// The record of a process.
    pub fn get(&self, container_id: &str, exec_id: &str) -> Option<ProcRecord> {
        self.lock()
            .procs
            .get(&(container_id.to_owned(), exec_id.to_owned()))
            .copied()
    }

    /// Blocks until the process has exited; `cancelled()` is asked a few times a second.
    pub fn wait(
        &self,
        container_id: &str,
        exec_id: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<ExitInfo, WaitError> {
        let key = (container_id.to_owned(), exec_id.to_owned());
        let mut t = self.lock();
        loop {
            match t.procs.get(&key) {
                None => return Err(WaitError::Unknown),
                Some(ProcRecord {
                    exit: Some(exit), ..
                }) => return Ok(*exit),
                Some(_) => {}
            }
            if cancelled() {
                return Err(WaitError::Cancelled);
            }
            t = self
                .exited
                .wait_timeout(t, CANCEL_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Live pids of a container mapped to their exec ids.
    pub fn live_pids(&self, container_id: &str) -> HashMap<i32, String> {
        self.lock()
            .procs
            .iter()
            .filter(|((c, _), r)| c == container_id && r.exit.is_none())
            .map(|((_, e), r)| (r.pid, e.clone()))
            .collect()
    }

    /// Forgets every process of a container; wakes its waiters (they get `Unknown`).
    pub fn remove_container(&self, container_id: &str) {
        let mut t = self.lock();
        t.procs.retain(|(c, _), _| c != container_id);
        t.by_pid.retain(|_, (c, _)| c != container_id);
        drop(t);
        self.exited.notify_all();
    }
}

/// Serializes libcontainer calls against the reaper (see the module doc).
#[derive(Debug, Default)]
pub struct SpawnLock {
    generation: Mutex<u64>,
    released: Condvar,
}

/// Held while libcontainer runs; releasing it tells a reaper idling on ECHILD to look again.
#[derive(Debug)]
pub struct SpawnGuard<'a> {
    generation: MutexGuard<'a, u64>,
    released: &'a Condvar,
}

impl Drop for SpawnGuard<'_> {
    fn drop(&mut self) {
        *self.generation = self.generation.wrapping_add(1);
        self.released.notify_all();
    }
}

impl SpawnLock {
    /// Takes the lock.
    pub fn lock(&self) -> SpawnGuard<'_> {
        SpawnGuard {
            generation: self
                .generation
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            released: &self.released,
        }
    }

    fn generation(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the lock has been released after `seen`, or `timeout`.
    fn wait_for_release_after(&self, seen: u64, timeout: Duration) {
        let g = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .released
            .wait_timeout_while(g, timeout, |g| *g == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Turns reaped statuses into table updates and events.
#[derive(Debug, Clone)]
pub struct Reaper {
    /// The process table.
    pub table: Arc<ProcessTable>,
    /// Where ProcessExited events go.
    pub events: Arc<EventQueue>,
    /// The lock libcontainer calls hold.
    pub spawn: Arc<SpawnLock>,
}

impl Reaper {
    /// Handles one reaped status.
    pub fn handle(&self, status: WaitStatus) {
        let Some((pid, exit_status, signal)) = encode_wait_status(status) else {
            return;
        };
        let pid = pid.as_raw();
        match self.table.record_exit(pid, exit_status, signal, now_ns()) {
            Some(((container_id, exec_id), info)) => {
                tracing::info!(%container_id, %exec_id, pid, exit_status, signal, "process exited");
                let mut event = Event::new();
                event.set_exited(ProcessExited {
                    container_id,
                    exec_id,
                    status: Some(info.to_proto()).into(),
                    ..Default::default()
                });
                self.events.push(event);
            }
            None => tracing::debug!(pid, exit_status, "reaped an untracked process"),
        }
    }

    /// Starts the reaper thread.
    pub fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || self.run())
            .map(|_| ())
    }

    fn run(&self) {
        loop {
            let seen = self.spawn.generation();
            match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => {
                    // No children at all: the next one can only come from a spawn.
                    self.spawn
                        .wait_for_release_after(seen, Duration::from_secs(1));
                    continue;
                }
                Err(err) => {
                    tracing::error!(%err, "waitid failed");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
            let _guard = self.spawn.lock();
            loop {
                match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                    Ok(status) => self.handle(status),
                    Err(Errno::EINTR) => continue,
                    Err(err) => {
                        tracing::error!(%err, "waitpid failed");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use nix::sys::signal::Signal;

    use super::*;

    #[test]
    fn test_exit_status_exit_code_is_kept() {
        let (pid, status, signal) =
            encode_wait_status(WaitStatus::Exited(Pid::from_raw(42), 3)).unwrap();
        assert_eq!((pid.as_raw(), status, signal), (42, 3, 0));
    }

    #[test]
    fn test_exit_status_sigterm_is_143_with_signal_15() {
        let (_, status, signal) = encode_wait_status(WaitStatus::Signaled(
            Pid::from_raw(42),
            Signal::SIGTERM,
            false,
        ))
        .unwrap();
        assert_eq!((status, signal), (143, 15));
    }

    #[test]
    fn test_exit_status_stop_is_not_an_exit() {
        assert!(
            encode_wait_status(WaitStatus::Stopped(Pid::from_raw(1), Signal::SIGSTOP)).is_none()
        );
    }

    fn reaper() -> Reaper {
        Reaper {
            table: Arc::default(),
            events: Arc::default(),
            spawn: Arc::default(),
        }
    }

    #[test]
    fn test_reaper_exit_records_status_wakes_waiter_and_queues_event() {
        // Arrange
        let r = reaper();
        r.table.register("c1", "", 100);
        let table = Arc::clone(&r.table);
        let waiter = std::thread::spawn(move || table.wait("c1", "", &|| false));
        std::thread::sleep(Duration::from_millis(50));
        // Act
        r.handle(WaitStatus::Signaled(
            Pid::from_raw(100),
            Signal::SIGKILL,
            false,
        ));
        // Assert
        let exit = waiter.join().unwrap().unwrap();
        assert_eq!((exit.pid, exit.exit_status, exit.signal), (100, 137, 9));
        let event = r.events.pop(&|| false).unwrap();
        let exited = event.exited();
        assert_eq!(exited.container_id, "c1");
        assert_eq!(exited.exec_id, "");
        assert_eq!(exited.status.exit_status, 137);
        // The status stays for later waiters.
        assert_eq!(r.table.wait("c1", "", &|| false).unwrap(), exit);
    }

    #[test]
    fn test_reaper_untracked_pid_queues_nothing() {
        let r = reaper();
        r.handle(WaitStatus::Exited(Pid::from_raw(7), 0));
        assert_eq!(r.events.len(), 0);
    }

    #[test]
    fn test_process_table_wait_unknown_and_cancelled() {
        let t = ProcessTable::default();
        assert_eq!(t.wait("c", "", &|| false), Err(WaitError::Unknown));
        t.register("c", "", 5);
        assert_eq!(t.wait("c", "", &|| true), Err(WaitError::Cancelled));
    }

    #[test]
    fn test_process_table_remove_container_wakes_waiter_with_unknown() {
        let t = Arc::new(ProcessTable::default());
        t.register("c", "e", 5);
        let t2 = Arc::clone(&t);
        let waiter = std::thread::spawn(move || t2.wait("c", "e", &|| false));
        std::thread::sleep(Duration::from_millis(50));
        t.remove_container("c");
        assert_eq!(waiter.join().unwrap(), Err(WaitError::Unknown));
        assert!(t.record_exit(5, 0, 0, 0).is_none());
    }

    #[test]
    fn test_process_table_forgets_oldest_exited_execs_beyond_the_bound() {
        let t = ProcessTable::default();
        t.register("c", "", 1);
        let mut pid = 10;
        for i in 0..=MAX_EXITED_EXECS {
            t.register("c", &format!("e{i}"), pid);
            t.record_exit(pid, 0, 0, 0).unwrap();
            pid += 1;
        }
        t.register("c", "last", pid);
        assert!(t.get("c", "e0").is_none(), "oldest exited exec kept");
        assert!(t.get("c", "e1").is_some());
        assert!(t.get("c", "").is_some(), "init forgotten");
        assert!(t.get("c", "last").is_some());
    }

    #[test]
    fn test_spawn_lock_release_wakes_idle_reaper() {
        let lock = Arc::new(SpawnLock::default());
        let seen = lock.generation();
        let l2 = Arc::clone(&lock);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(l2.lock());
        });
        let start = std::time::Instant::now();
        lock.wait_for_release_after(seen, Duration::from_secs(5));
        assert!(start.elapsed() < Duration::from_secs(4));
        t.join().unwrap();
    }
}
