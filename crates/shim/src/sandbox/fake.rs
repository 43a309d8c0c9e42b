//! A scripted [`Sandbox`] for the task service's tests: processes live in a table, a signal
//! that ends a process ends it (the init's end takes the container's other processes with it,
//! as a pid namespace does), and the test can end processes, send OOM events or end the VM.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use containerd_shim::protos::cgroups_v2::metrics::{MemoryStat, Metrics};
use lcow_protocol::vm::VmExit;

use super::{
    BootRequest, ContainerSpec, ExecSpec, GuestProcess, Launcher, ProcessEnd, Sandbox,
    SandboxEvent, VmEnd,
};
use crate::cleanup::{self, CleanupError, STATE_MARKER};
use crate::error::{Result, ShimError};
use crate::mounts::fake::FakeMounts;

/// The signals after which a fake process ends (HUP, INT, KILL, TERM).
const ENDING_SIGNALS: [u32; 4] = [1, 2, 9, 15];

#[derive(Debug)]
struct Proc {
    pid: u32,
    /// `None` while alive (created or running).
    status: Option<u32>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<String>,
    procs: HashMap<(String, String), Proc>,
    specs: HashMap<String, ContainerSpec>,
    next_pid: u32,
    ended: Option<VmEnd>,
    events: VecDeque<SandboxEvent>,
    failing: HashMap<String, ShimError>,
    /// Containers whose init ends, with this status, as soon as it starts.
    end_on_start: HashMap<String, u32>,
}

/// One fake VM.
#[derive(Debug)]
pub struct FakeSandbox {
    state_dir: PathBuf,
    shared: PathBuf,
    host: Arc<FakeMounts>,
    state: Mutex<State>,
    changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key(id: &str, exec_id: &str) -> (String, String) {
    (id.to_owned(), exec_id.to_owned())
}

impl FakeSandbox {
    /// A VM whose state directory is `state_dir` (made now, with the shim's marker), cleaned up
    /// through `host`.
    pub fn new(state_dir: &Path, host: Arc<FakeMounts>) -> Self {
        let shared = state_dir.join("shared");
        std::fs::create_dir_all(&shared).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(state_dir.join(STATE_MARKER), "").unwrap_or_else(|e| panic!("{e}"));
        Self {
            state_dir: state_dir.to_owned(),
            shared,
            host,
            state: Mutex::new(State {
                next_pid: 100,
                ..Default::default()
            }),
            changed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Every call so far, as `op args...` lines.
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// The spec container `id` was created with.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.state().specs.get(id).cloned()
    }

    /// The next call of `op` (`create`, `start`, `exec`, `kill`, ...) fails with `err`.
    pub fn fail_next(&self, op: &str, err: ShimError) {
        self.state().failing.insert(op.to_owned(), err);
    }

    /// The init of container `id` ends with `status` the moment it starts (a command that
    /// exits at once).
    pub fn end_on_start(&self, id: &str, status: u32) {
        self.state().end_on_start.insert(id.to_owned(), status);
    }

    /// Ends a process with `status` as the guest would (the init takes its container's other
    /// processes with it, with 137).
    pub fn exit(&self, id: &str, exec_id: &str, status: u32) {
        let mut s = self.state();
        end_process(&mut s, id, exec_id, status);
        drop(s);
        self.changed.notify_all();
    }

    /// The guest reports an OOM kill in container `id`.
    pub fn oom(&self, id: &str) {
        self.state().events.push_back(SandboxEvent::Oom {
            container_id: id.to_owned(),
        });
        self.changed.notify_all();
    }

    /// The VM ends on its own, as `how` says.
    pub fn die(&self, how: VmExit) {
        self.state().ended = Some(VmEnd::Exited(how));
        self.changed.notify_all();
    }

    /// Whether a process is alive in the guest.
    pub fn alive(&self, id: &str, exec_id: &str) -> bool {
        self.state()
            .procs
            .get(&key(id, exec_id))
            .is_some_and(|p| p.status.is_none())
    }

    fn enter(&self, call: String, op: &str) -> Result<MutexGuard<'_, State>> {
        let mut s = self.state();
        s.calls.push(call);
        if let Some(e) = s.failing.remove(op) {
            return Err(e);
        }
        if let Some(end) = s.ended {
            return Err(ShimError::Internal(format!("{op}: the vm ended ({end})")));
        }
        Ok(s)
    }
}

fn end_process(s: &mut State, id: &str, exec_id: &str, status: u32) {
    if let Some(p) = s.procs.get_mut(&key(id, exec_id)) {
        p.status.get_or_insert(status);
    }
    if exec_id.is_empty() {
        for ((c, _), p) in s.procs.iter_mut() {
            if c == id && p.status.is_none() {
                p.status = Some(128 + 9);
            }
        }
    }
}

fn new_pid(s: &mut State) -> u32 {
    s.next_pid += 1;
    s.next_pid
}

impl Sandbox for FakeSandbox {
    fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn shared_dir(&self) -> &Path {
        &self.shared
    }

    fn share_tag(&self) -> &str {
        "lcow"
    }

    fn vmm_pid(&self) -> u32 {
        1
    }

    fn create(&self, spec: &ContainerSpec) -> Result<u32> {
        let mut s = self.enter(format!("create {}", spec.id), "create")?;
        let pid = new_pid(&mut s);
        s.procs
            .insert(key(&spec.id, ""), Proc { pid, status: None });
        s.specs.insert(spec.id.clone(), spec.clone());
        Ok(pid)
    }

    fn start(&self, id: &str) -> Result<u32> {
        let mut s = self.enter(format!("start {id}"), "start")?;
        let pid = s
            .procs
            .get(&key(id, ""))
            .map(|p| p.pid)
            .ok_or_else(|| ShimError::NotFound(format!("container {id}")))?;
        if let Some(status) = s.end_on_start.remove(id) {
            end_process(&mut s, id, "", status);
            drop(s);
            self.changed.notify_all();
            // Give the waiter the chance to see the end before Start returns.
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(pid)
    }

    fn exec(&self, spec: &ExecSpec) -> Result<u32> {
        let mut s = self.enter(format!("exec {} {}", spec.id, spec.exec_id), "exec")?;
        let pid = new_pid(&mut s);
        s.procs
            .insert(key(&spec.id, &spec.exec_id), Proc { pid, status: None });
        Ok(pid)
    }

    fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let mut s = self.enter(format!("kill {id} {exec_id:?} {signal} all={all}"), "kill")?;
        if !s.procs.contains_key(&key(id, exec_id)) {
            return Err(ShimError::NotFound(format!("process {exec_id:?} of {id}")));
        }
        if ENDING_SIGNALS.contains(&signal) {
            end_process(&mut s, id, exec_id, 128 + signal);
            if all {
                for ((c, _), p) in s.procs.iter_mut() {
                    if c == id && p.status.is_none() {
                        p.status = Some(128 + signal);
                    }
                }
            }
        }
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    fn wait(&self, id: &str, exec_id: &str) -> ProcessEnd {
        let mut s = self.state();
        loop {
            if let Some(status) = s.procs.get(&key(id, exec_id)).and_then(|p| p.status) {
                return ProcessEnd { status, lost: None };
            }
            if let Some(end) = s.ended {
                return ProcessEnd {
                    status: 255,
                    lost: Some(format!("the vm ended ({end})")),
                };
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.enter(format!("pause {id}"), "pause").map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.enter(format!("resume {id}"), "resume").map(drop)
    }

    fn stats(&self, id: &str) -> Result<Metrics> {
        drop(self.enter(format!("stats {id}"), "stats")?);
        Ok(Metrics {
            memory: Some(MemoryStat {
                usage: 4096,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
    }

    fn update(&self, id: &str, resources: &[u8]) -> Result<()> {
        let len = resources.len();
        self.enter(format!("update {id} {len}"), "update").map(drop)
    }

    fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.enter(
            format!("resize {id} {exec_id:?} {width}x{height}"),
            "resize",
        )
        .map(drop)
    }

    fn close_stdin(&self, id: &str, exec_id: &str) {
        self.state()
            .calls
            .push(format!("close-stdin {id} {exec_id:?}"));
    }

    fn pids(&self, id: &str) -> Result<Vec<GuestProcess>> {
        let s = self.enter(format!("pids {id}"), "pids")?;
        let mut out: Vec<GuestProcess> = s
            .procs
            .iter()
            .filter(|((c, _), p)| c == id && p.status.is_none())
            .map(|((_, e), p)| GuestProcess {
                pid: p.pid,
                exec_id: e.clone(),
            })
            .collect();
        out.sort_by_key(|p| p.pid);
        Ok(out)
    }

    fn remove(&self, id: &str) -> Result<()> {
        let mut s = self.enter(format!("remove {id}"), "remove")?;
        s.procs.retain(|(c, _), _| c != id);
        Ok(())
    }

    fn next_event(&self) -> Option<SandboxEvent> {
        let mut s = self.state();
        loop {
            if let Some(e) = s.events.pop_front() {
                return Some(e);
            }
            if s.ended.is_some() {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn ended(&self) -> Option<VmEnd> {
        self.state().ended
    }

    fn wait_ended(&self, timeout: Duration) -> Option<VmEnd> {
        let s = self.state();
        let (s, _) = self
            .changed
            .wait_timeout_while(s, timeout, |s| s.ended.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        s.ended
    }

    fn shutdown(&self) -> std::result::Result<(), CleanupError> {
        {
            let mut s = self.state();
            s.calls.push("shutdown".to_owned());
            s.ended.get_or_insert(VmEnd::Exited(VmExit::PowerOff));
        }
        self.changed.notify_all();
        cleanup::remove_state_dir(&self.state_dir, &*self.host)
    }
}

/// Hands out one [`FakeSandbox`] and counts the boots.
#[derive(Debug)]
pub struct FakeLauncher {
    /// The VM every boot returns.
    pub sandbox: Arc<FakeSandbox>,
    boots: AtomicUsize,
    fail: Mutex<Option<String>>,
    disks: Mutex<Vec<lcow_protocol::vm::DiskSpec>>,
}

impl FakeLauncher {
    /// A launcher of `sandbox`.
    pub fn new(sandbox: Arc<FakeSandbox>) -> Self {
        Self {
            sandbox,
            boots: AtomicUsize::new(0),
            fail: Mutex::new(None),
            disks: Mutex::new(Vec::new()),
        }
    }

    /// How many VMs were booted.
    pub fn boots(&self) -> usize {
        self.boots.load(Ordering::Relaxed)
    }

    /// The disks the last boot gave its VM.
    pub fn disks(&self) -> Vec<lcow_protocol::vm::DiskSpec> {
        lock(&self.disks).clone()
    }

    /// The next boot fails with `message`.
    pub fn fail_next(&self, message: &str) {
        *lock(&self.fail) = Some(message.to_owned());
    }
}

impl Launcher for FakeLauncher {
    fn boot(&self, req: &BootRequest<'_>) -> Result<Arc<dyn Sandbox>> {
        *lock(&self.disks) = req.disks.to_vec();
        if let Some(message) = lock(&self.fail).take() {
            return Err(ShimError::Internal(format!(
                "cannot boot the vm: {message}"
            )));
        }
        self.boots.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::clone(&self.sandbox) as Arc<dyn Sandbox>)
    }
}
