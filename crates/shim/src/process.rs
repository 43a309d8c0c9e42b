//! The shim's view of a container and its processes: phase, pid, exit status, stdio pumps,
//! and a condition variable that Wait blocks on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use protobuf::well_known_types::timestamp::Timestamp;

use crate::stdio::HostIo;

/// Where a process is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Created (init) or declared by Exec, not started.
    Created,
    /// Started and not yet reaped.
    Running,
    /// Ended with this status at this time.
    Stopped {
        /// The status as a shell reports it.
        status: u32,
        /// When the shim learned of it.
        at: SystemTime,
    },
}

/// A container's init process or one of its execs.
#[derive(Debug)]
pub struct Process {
    /// The exec id, empty for init.
    pub exec_id: String,
    /// containerd's FIFOs.
    pub io: HostIo,
    /// For an exec: the OCI process object as JSON.
    pub spec: Vec<u8>,
    /// The guest pid (0 until known).
    pub pid: AtomicU32,
    phase: Mutex<Phase>,
    changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Process {
    /// A process that has not started.
    pub fn new(exec_id: &str, io: HostIo, spec: Vec<u8>) -> Self {
        Self {
            exec_id: exec_id.to_owned(),
            io,
            spec,
            pid: AtomicU32::new(0),
            phase: Mutex::new(Phase::Created),
            changed: Condvar::new(),
        }
    }

    /// The pid.
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        lock(&self.phase).clone()
    }

    /// Moves from Created to Running; false (and no change) when it is no longer Created (an
    /// init that ended before its Start was recorded stays Stopped).
    pub fn set_running(&self) -> bool {
        let mut p = lock(&self.phase);
        if *p != Phase::Created {
            return false;
        }
        *p = Phase::Running;
        drop(p);
        self.changed.notify_all();
        true
    }

    /// Marks the process ended (once; a later call keeps the first status).
    pub fn set_exited(&self, status: u32) -> (u32, SystemTime) {
        let mut p = lock(&self.phase);
        if let Phase::Stopped { status, at } = *p {
            return (status, at);
        }
        let at = SystemTime::now();
        *p = Phase::Stopped { status, at };
        drop(p);
        self.changed.notify_all();
        (status, at)
    }

    /// Blocks until the process has ended; its status and time.
    pub fn wait(&self) -> (u32, SystemTime) {
        let mut p = lock(&self.phase);
        loop {
            if let Phase::Stopped { status, at } = *p {
                return (status, at);
            }
            p = self.changed.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until the process has ended or `timeout` passed; whether it ended.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let p = lock(&self.phase);
        let (p, _) = self
            .changed
            .wait_timeout_while(p, timeout, |p| !matches!(p, Phase::Stopped { .. }))
            .unwrap_or_else(PoisonError::into_inner);
        matches!(*p, Phase::Stopped { .. })
    }

    /// Whether the process has ended.
    pub fn stopped(&self) -> bool {
        matches!(self.phase(), Phase::Stopped { .. })
    }
}

/// A container in the VM.
#[derive(Debug)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// containerd's bundle directory.
    pub bundle: PathBuf,
    /// The init process.
    pub init: Arc<Process>,
    /// Exec'd processes by exec id.
    pub execs: Mutex<HashMap<String, Arc<Process>>>,
    /// Whether it is paused (frozen).
    pub paused: AtomicBool,
    /// Held while an exit is recorded and published, so the init's TaskExit follows the
    /// TaskExit of every exec that ended before it.
    pub exits: Mutex<()>,
}

impl Container {
    /// A container whose init process is `init`.
    pub fn new(id: &str, bundle: PathBuf, init: Arc<Process>) -> Self {
        Self {
            id: id.to_owned(),
            bundle,
            init,
            execs: Mutex::new(HashMap::new()),
            paused: AtomicBool::new(false),
            exits: Mutex::new(()),
        }
    }

    /// Whether the container is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// The process named by `exec_id` (empty: init).
    pub fn process(&self, exec_id: &str) -> Option<Arc<Process>> {
        if exec_id.is_empty() {
            Some(Arc::clone(&self.init))
        } else {
            lock(&self.execs).get(exec_id).cloned()
        }
    }

    /// The exec table.
    pub fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        lock(&self.execs)
    }
}

/// A protobuf timestamp of `t`.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn test_wait_returns_after_exit_and_keeps_first_status() {
        let p = Arc::new(Process::new("", HostIo::default(), Vec::new()));
        let q = Arc::clone(&p);
        let waiter = thread::spawn(move || q.wait().0);
        thread::sleep(Duration::from_millis(20));
        p.set_exited(7);
        p.set_exited(9);
        assert_eq!(waiter.join().unwrap(), 7);
        assert!(matches!(p.phase(), Phase::Stopped { status: 7, .. }));
    }

    #[test]
    fn test_set_running_only_from_created() {
        let p = Process::new("", HostIo::default(), Vec::new());
        assert!(p.set_running());
        assert!(!p.set_running());
        let q = Process::new("", HostIo::default(), Vec::new());
        q.set_exited(0);
        assert!(!q.set_running(), "an end recorded first is kept");
        assert!(q.stopped());
    }

    #[test]
    fn test_wait_timeout_reports_whether_it_ended() {
        let p = Process::new("", HostIo::default(), Vec::new());
        assert!(!p.wait_timeout(Duration::from_millis(10)));
        p.set_exited(0);
        assert!(p.wait_timeout(Duration::from_millis(10)) && p.stopped());
    }

    #[test]
    fn test_timestamp_of_epoch_plus() {
        // 600 ns: Windows clocks count in 100 ns.
        let t = SystemTime::UNIX_EPOCH + Duration::new(5, 600);
        let ts = timestamp(t);
        assert_eq!((ts.seconds, ts.nanos), (5, 600));
    }
}
