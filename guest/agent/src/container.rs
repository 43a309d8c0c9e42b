//! Container lifecycle RPCs: CreateContainer, StartProcess, RemoveContainer, Pause, Resume,
//! UpdateContainer, Stats, ListPids, and killing everything at Shutdown.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lcow_protocol::agent::{CreateContainerRequest, ProcessInfo, StatsResponse, Stdio};
use lcow_protocol::stdio::StreamKind;

use crate::bundle::{self, GuestMount, MAX_GUEST_MOUNTS};
use crate::cgroup::{self, CgroupError};
use crate::copy::{self, ChildStdio, HostStreams, IoHandle, Plumbing, ProcName};
use crate::error::AgentError;
use crate::runtime::CreateRequest;
use crate::state::{lock, Agent, ContainerEntry, Phase};
use crate::tty::ConsoleSocket;

/// The longest file name (the container id names directories).
const NAME_MAX: usize = 255;
/// How long the runtime has to send the pty master after it returned.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);

fn proc_name(container_id: &str, exec_id: &str) -> ProcName {
    ProcName {
        container_id: container_id.to_owned(),
        exec_id: exec_id.to_owned(),
    }
}

fn stream_name(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Stdin => "stdin",
        StreamKind::Stdout => "stdout",
        StreamKind::Stderr => "stderr",
    }
}

/// A process's stdio, ready for the runtime call.
#[derive(Debug)]
pub struct PreparedStdio {
    /// The child's ends (no terminal).
    pub child: Option<ChildStdio>,
    /// The agent's side.
    pub io: PendingIo,
}

/// The agent's side of a process's stdio before the process exists.
#[derive(Debug)]
pub enum PendingIo {
    /// Pipes: the copy threads run already, so output written while the runtime sets the
    /// process up (before its exec) can never fill a pipe nobody reads.
    Pipes(IoHandle),
    /// A terminal: the copying starts once the runtime has sent the pty master.
    Terminal(Plumbing, ConsoleSocket),
}

impl PreparedStdio {
    /// The console socket to hand to the runtime, with a terminal.
    pub fn console_path(&self) -> Option<&std::path::Path> {
        match &self.io {
            PendingIo::Terminal(_, console) => Some(console.path()),
            PendingIo::Pipes(_) => None,
        }
    }
}

impl Agent {
    /// Takes the declared streams of a process from the pending table and makes its pipes
    /// (and starts copying) or its console socket.
    pub fn prepare_stdio(
        &self,
        container_id: &str,
        exec_id: &str,
        stdio: &Stdio,
    ) -> Result<PreparedStdio, AgentError> {
        let kinds: Vec<StreamKind> = [
            (stdio.stdin, StreamKind::Stdin),
            (stdio.stdout, StreamKind::Stdout),
            (stdio.stderr, StreamKind::Stderr),
        ]
        .into_iter()
        .filter_map(|(declared, kind)| declared.then_some(kind))
        .collect();
        let mut taken = self
            .stdio
            .take_all(container_id, exec_id, &kinds, Instant::now())
            .map_err(|missing| AgentError::MissingStream {
                container_id: container_id.to_owned(),
                exec_id: exec_id.to_owned(),
                stream: stream_name(missing),
            })?
            .into_iter();
        let mut streams = HostStreams::default();
        for kind in &kinds {
            let s = taken.next();
            match kind {
                StreamKind::Stdin => streams.stdin = s,
                StreamKind::Stdout => streams.stdout = s,
                StreamKind::Stderr => streams.stderr = s,
            }
        }
        if stdio.terminal {
            std::fs::create_dir_all(&self.config.tty_dir)
                .map_err(|e| AgentError::io("create the console socket directory", e))?;
            let path = self.next_tty_path();
            let console = ConsoleSocket::bind(path)
                .map_err(|e| AgentError::io("listen on a console socket", e))?;
            Ok(PreparedStdio {
                child: None,
                io: PendingIo::Terminal(copy::terminal(streams), console),
            })
        } else {
            let (child, plumbing) =
                copy::pipes(streams).map_err(|e| AgentError::io("create stdio pipes", e))?;
            let io = plumbing
                .start(None, &proc_name(container_id, exec_id))
                .map_err(|e| AgentError::io("start the stdio copy threads", e))?;
            Ok(PreparedStdio {
                child: Some(child),
                io: PendingIo::Pipes(io),
            })
        }
    }

    /// Finishes a process's stdio once it exists: receives the pty master (terminal) and
    /// starts its copy threads; records the handle. Forgets the handles of exited processes.
    pub fn start_io(
        &self,
        entry: &ContainerEntry,
        exec_id: &str,
        io: PendingIo,
    ) -> Result<(), AgentError> {
        let io = match io {
            PendingIo::Pipes(io) => io,
            PendingIo::Terminal(plumbing, console) => {
                let master: OwnedFd = console.receive_master(CONSOLE_TIMEOUT).map_err(|e| {
                    AgentError::io("receive the pty master from the console socket", e)
                })?;
                plumbing
                    .start(Some(master), &proc_name(&entry.id, exec_id))
                    .map_err(|e| AgentError::io("start the stdio copy threads", e))?
            }
        };
        let mut handles = lock(&entry.io);
        handles.retain(|exec, _| {
            self.processes
                .get(&entry.id, exec)
                .is_some_and(|r| r.exit.is_none())
        });
        handles.insert(exec_id.to_owned(), Arc::new(io));
        Ok(())
    }

    /// CreateContainer.
    pub fn create_container(&self, req: &CreateContainerRequest) -> Result<u32, AgentError> {
        let id = req.container_id.as_str();
        Self::check_container_id(id)?;
        if id.len() > NAME_MAX {
            // The id names the bundle, state and cgroup directories.
            return Err(AgentError::invalid_id("container", id));
        }
        let stdio = req.stdio.clone().unwrap_or_default();
        let (spec, cgroups_path) = bundle::prepare_spec(
            &req.oci_spec,
            id,
            &req.rootfs,
            &self.config.default_rootfs,
            stdio.terminal,
        )?;
        let cgroup_dir = cgroup::cgroup_dir(&self.config.cgroup_root, &cgroups_path)?;
        if req.guest_mounts.len() > MAX_GUEST_MOUNTS {
            return Err(AgentError::BadRequest(format!(
                "{} guest mounts, more than the {MAX_GUEST_MOUNTS} allowed",
                req.guest_mounts.len()
            )));
        }
        let mounts = req
            .guest_mounts
            .iter()
            .map(GuestMount::parse)
            .collect::<Result<Vec<_>, _>>()?;

        let entry = Arc::new(ContainerEntry {
            id: id.to_owned(),
            cgroup_dir,
            bundle_dir: self.config.run_dir.join(id),
            phase: std::sync::Mutex::new(Phase::Creating),
            mounts: std::sync::Mutex::new(Vec::new()),
            io: std::sync::Mutex::new(HashMap::new()),
        });
        {
            let mut containers = lock(&self.containers);
            if containers.contains_key(id) {
                return Err(AgentError::WrongState(format!(
                    "container {id} already exists"
                )));
            }
            containers.insert(id.to_owned(), Arc::clone(&entry));
        }
        match self.create_inner(&entry, &spec, &mounts, &stdio) {
            Ok(pid) => {
                entry.set_phase(Phase::Created);
                tracing::info!(container_id = id, pid, "container created");
                Ok(u32::try_from(pid).unwrap_or(0))
            }
            Err(err) => {
                tracing::warn!(container_id = id, error = %err.message(), "create failed");
                self.undo_guest_state(&entry);
                lock(&self.containers).remove(id);
                Err(err)
            }
        }
    }

    fn create_inner(
        &self,
        entry: &ContainerEntry,
        spec: &oci_spec::runtime::Spec,
        mounts: &[GuestMount],
        stdio: &Stdio,
    ) -> Result<i32, AgentError> {
        let id = entry.id.as_str();
        let prepared = self.prepare_stdio(id, "", stdio)?;
        for m in mounts {
            self.guest_mounts.attach(&*self.sys, m).map_err(|e| {
                AgentError::io(
                    format!("mount the guest mount on {}", m.target.display()),
                    e,
                )
            })?;
            lock(&entry.mounts).push(m.target.clone());
        }
        if let Some(root) = spec.root() {
            // After the guest mounts, which may be what provides it.
            if !root.path().is_dir() {
                let hint = if root.path() == self.config.default_rootfs.as_path() {
                    " (the default test rootfs travels only in the test initramfs, \
                     `make guest-test`; otherwise name a rootfs)"
                } else {
                    ""
                };
                return Err(AgentError::BadRequest(format!(
                    "rootfs {} is not a directory in the guest{hint}",
                    root.path().display()
                )));
            }
        }
        std::fs::create_dir_all(&entry.bundle_dir)
            .map_err(|e| AgentError::io("create the bundle directory", e))?;
        let json = serde_json::to_vec(spec)
            .map_err(|e| AgentError::io("serialize the OCI spec", std::io::Error::other(e)))?;
        let config = entry.bundle_dir.join("config.json");
        std::fs::write(&config, json)
            .map_err(|e| AgentError::io(format!("write {}", config.display()), e))?;
        std::fs::create_dir_all(&self.config.state_root)
            .map_err(|e| AgentError::io("create the runtime state directory", e))?;

        let console_path = prepared.console_path().map(std::path::Path::to_path_buf);
        let PreparedStdio { child, io } = prepared;
        let pid = {
            let _spawn = self.spawn.lock();
            let pid = self
                .runtime
                .create(CreateRequest {
                    id,
                    bundle: &entry.bundle_dir,
                    no_pivot: self.config.no_pivot,
                    stdio: child,
                    console_socket: console_path.as_deref(),
                })
                .map_err(|source| AgentError::Runtime {
                    op: "create container",
                    source,
                })?;
            self.processes.register(id, "", pid);
            pid
        };
        if let Err(err) = self.start_io(entry, "", io) {
            self.abort_created(id, pid);
            return Err(err);
        }
        if let Some(oom) = &self.oom {
            if let Err(e) = oom.watch(id, &entry.cgroup_dir) {
                tracing::warn!(container_id = id, error = %e, "no OOM events for this container");
            }
        }
        Ok(pid)
    }

    /// Kills and deletes a container whose creation failed after the runtime made it.
    fn abort_created(&self, id: &str, pid: i32) {
        let _spawn = self.spawn.lock();
        if let Err(e) = self.sys.kill(pid, libc::SIGKILL) {
            tracing::warn!(container_id = id, pid, error = %e, "cannot kill the init process");
        }
        if let Err(e) = self.runtime.delete(id) {
            tracing::warn!(container_id = id, error = %e, "cannot delete the failed container");
        }
        self.processes.remove_container(id);
    }

    /// Unmounts guest mounts (last first), closes stdio and removes the bundle.
    fn undo_guest_state(&self, entry: &ContainerEntry) {
        if let Some(oom) = &self.oom {
            oom.unwatch(&entry.id);
        }
        for (_, io) in lock(&entry.io).drain() {
            io.close_stdin();
        }
        let mounts: Vec<_> = lock(&entry.mounts).drain(..).collect();
        for target in mounts.iter().rev() {
            if let Err(e) = self.guest_mounts.detach(&*self.sys, target) {
                tracing::warn!(container_id = %entry.id, target = %target.display(), error = %e, "unmount failed");
            }
        }
        if entry.bundle_dir.exists() {
            if let Err(e) = bundle::remove_bundle(&entry.bundle_dir) {
                tracing::warn!(container_id = %entry.id, error = %e, "cannot remove the bundle");
            }
        }
        self.stdio.remove_container(&entry.id);
    }

    /// StartProcess.
    pub fn start_container(&self, id: &str) -> Result<u32, AgentError> {
        let entry = self.container(id)?;
        if entry.phase() != Phase::Created {
            return Err(AgentError::WrongState(format!(
                "container {id} was already started"
            )));
        }
        let pid =
            self.processes.get(id, "").map(|r| r.pid).ok_or_else(|| {
                AgentError::WrongState(format!("container {id} has no init process"))
            })?;
        {
            let _spawn = self.spawn.lock();
            self.runtime
                .start(id)
                .map_err(|source| AgentError::Runtime {
                    op: "start container",
                    source,
                })?;
        }
        entry.set_phase(Phase::Started);
        tracing::info!(container_id = id, pid, "container started");
        Ok(u32::try_from(pid).unwrap_or(0))
    }

    /// RemoveContainer: only once its init process has exited.
    pub fn remove_container(&self, id: &str) -> Result<(), AgentError> {
        let entry = self.container(id)?;
        if !self.init_exited(id) {
            return Err(AgentError::WrongState(format!(
                "container {id} is running: signal it and wait for its exit before removing it"
            )));
        }
        // One removal at a time.
        entry
            .transition(&[Phase::Created, Phase::Started], Phase::Removing)
            .map_err(|_| AgentError::WrongState(format!("container {id} is being removed")))?;
        // Without a pid namespace, processes may outlive init.
        match cgroup::signal_all(&*self.sys, &entry.cgroup_dir, libc::SIGKILL) {
            Ok(_) | Err(CgroupError::NoCgroup { .. }) => {}
            Err(e) => tracing::warn!(container_id = id, error = %e, "cannot kill leftovers"),
        }
        {
            let _spawn = self.spawn.lock();
            if let Err(e) = self.runtime.delete(id) {
                tracing::warn!(container_id = id, error = %AgentError::Runtime { op: "delete", source: e }.message(), "runtime delete failed; removing what remains");
                let state = self.config.state_root.join(id);
                if state.exists() {
                    let _ = std::fs::remove_dir_all(state);
                }
            }
        }
        self.undo_guest_state(&entry);
        self.processes.remove_container(id);
        lock(&self.containers).remove(id);
        tracing::info!(container_id = id, "container removed");
        Ok(())
    }

    /// Pause.
    pub fn pause(&self, id: &str) -> Result<(), AgentError> {
        self.container(id)?;
        self.runtime
            .pause(id)
            .map_err(|source| AgentError::Runtime {
                op: "pause",
                source,
            })
    }

    /// Resume.
    pub fn resume(&self, id: &str) -> Result<(), AgentError> {
        self.container(id)?;
        self.runtime
            .resume(id)
            .map_err(|source| AgentError::Runtime {
                op: "resume",
                source,
            })
    }

    /// UpdateContainer.
    pub fn update(&self, id: &str, resources: &[u8]) -> Result<(), AgentError> {
        let entry = self.container(id)?;
        let r = bundle::parse_resources(resources)?;
        cgroup::apply_resources(&*self.sys, &entry.cgroup_dir, &r)?;
        Ok(())
    }

    /// Stats.
    pub fn stats(&self, id: &str) -> Result<StatsResponse, AgentError> {
        let entry = self.container(id)?;
        Ok(cgroup::read_stats(&entry.cgroup_dir)?)
    }

    /// ListPids: the cgroup's processes, with the exec id of those the agent started.
    pub fn list_pids(&self, id: &str) -> Result<Vec<ProcessInfo>, AgentError> {
        let entry = self.container(id)?;
        let ours = self.processes.live_pids(id);
        let pids = cgroup::list_pids(&entry.cgroup_dir)?;
        Ok(pids
            .into_iter()
            .map(|pid| ProcessInfo {
                pid: u32::try_from(pid).unwrap_or(0),
                exec_id: ours.get(&pid).cloned().unwrap_or_default(),
                ..Default::default()
            })
            .collect())
    }

    /// Kills every process of every container (Shutdown).
    pub fn kill_everything(&self) {
        let entries: Vec<Arc<ContainerEntry>> = lock(&self.containers).values().cloned().collect();
        for entry in entries {
            let _ = cgroup::signal_all(&*self.sys, &entry.cgroup_dir, libc::SIGKILL);
            for pid in self.processes.live_pids(&entry.id).into_keys() {
                let _ = self.sys.kill(pid, libc::SIGKILL);
            }
            tracing::info!(container_id = %entry.id, "killed for shutdown");
        }
    }
}
