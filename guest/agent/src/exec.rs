//! Process RPCs: ExecProcess, SignalProcess, WaitProcess, ResizePty, CloseStdin.
//!
//! A process is named by (container, exec); the empty exec id is the container's init.

use lcow_protocol::agent::{ExecProcessRequest, ExitStatus};

use crate::bundle;
use crate::cgroup::{self, CgroupError};
use crate::container::PreparedStdio;
use crate::error::AgentError;
use crate::reaper::WaitError;
use crate::runtime::ExecRequest;
use crate::state::{Agent, Phase};
use crate::tty;

/// The largest signal number (SIGRTMAX on Linux).
const MAX_SIGNAL: u32 = 64;

impl Agent {
    /// ExecProcess.
    pub fn exec_process(&self, req: &ExecProcessRequest) -> Result<u32, AgentError> {
        let id = req.container_id.as_str();
        let exec_id = req.exec_id.as_str();
        let entry = self.container(id)?;
        Self::check_exec_id(exec_id, false)?;
        if entry.phase() != Phase::Started || self.init_exited(id) {
            return Err(AgentError::WrongState(format!(
                "container {id} is not running"
            )));
        }
        if self
            .processes
            .get(id, exec_id)
            .is_some_and(|r| r.exit.is_none())
        {
            return Err(AgentError::WrongState(format!(
                "exec {exec_id} of container {id} is already running"
            )));
        }
        let stdio = req.stdio.clone().unwrap_or_default();
        let process = bundle::prepare_process(&req.process, stdio.terminal)?;
        let prepared = self.prepare_stdio(id, exec_id, &stdio)?;
        let console_path = prepared.console_path().map(std::path::Path::to_path_buf);
        let PreparedStdio { child, io } = prepared;
        // Exec ids may be longer than a file name may be: number the file instead.
        let path = entry
            .bundle_dir
            .join(format!("exec-{}.json", self.next_seq()));
        let json = serde_json::to_vec(&process)
            .map_err(|e| AgentError::io("serialize the process", std::io::Error::other(e)))?;
        std::fs::write(&path, json)
            .map_err(|e| AgentError::io(format!("write {}", path.display()), e))?;

        let result = {
            let _spawn = self.spawn.lock();
            let result = self.runtime.exec(ExecRequest {
                id,
                process_json: &path,
                stdio: child,
                console_socket: console_path.as_deref(),
            });
            if let Ok(pid) = result {
                self.processes.register(id, exec_id, pid);
            }
            result
        };
        let _ = std::fs::remove_file(&path);
        let pid = result.map_err(|source| AgentError::Runtime { op: "exec", source })?;
        if let Err(err) = self.start_io(&entry, exec_id, io) {
            // The process runs without its terminal: end it rather than leave it orphaned.
            let _ = self.sys.kill(pid, libc::SIGKILL);
            return Err(err);
        }
        tracing::info!(container_id = id, exec_id, pid, "process exec'd");
        Ok(u32::try_from(pid).unwrap_or(0))
    }

    /// SignalProcess: one process, or (init's exec id with `all`) the whole cgroup.
    pub fn signal_process(
        &self,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<(), AgentError> {
        let entry = self.container(id)?;
        Self::check_exec_id(exec_id, true)?;
        if signal == 0 || signal > MAX_SIGNAL {
            return Err(AgentError::BadRequest(format!(
                "signal {signal} is not between 1 and {MAX_SIGNAL}"
            )));
        }
        let sig = i32::try_from(signal).unwrap_or(libc::SIGKILL);
        // The reaper only reaps under the spawn lock: while we hold it, a pid of the table
        // that has not exited cannot be reaped and reused.
        let _spawn = self.spawn.lock();
        if all {
            if !exec_id.is_empty() {
                return Err(AgentError::BadRequest(
                    "`all` applies to the container's init (empty exec id) only".to_owned(),
                ));
            }
            return match cgroup::signal_all(&*self.sys, &entry.cgroup_dir, sig) {
                Ok(n) => {
                    tracing::info!(container_id = id, signal, processes = n, "signalled all");
                    Ok(())
                }
                Err(CgroupError::NoCgroup { .. }) => self.signal_one(id, exec_id, sig),
                Err(e) => Err(e.into()),
            };
        }
        self.signal_one(id, exec_id, sig)
    }

    fn signal_one(&self, id: &str, exec_id: &str, sig: i32) -> Result<(), AgentError> {
        let rec = self
            .processes
            .get(id, exec_id)
            .ok_or_else(|| AgentError::UnknownExec {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            })?;
        if rec.exit.is_some() {
            return Err(AgentError::WrongState(format!(
                "process {exec_id:?} of container {id} has already exited"
            )));
        }
        self.sys
            .kill(rec.pid, sig)
            .map_err(|e| AgentError::io(format!("send signal {sig} to pid {}", rec.pid), e))?;
        tracing::info!(
            container_id = id,
            exec_id,
            pid = rec.pid,
            signal = sig,
            "signalled"
        );
        Ok(())
    }

    /// WaitProcess: blocks until the process has exited.
    pub fn wait_process(
        &self,
        id: &str,
        exec_id: &str,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<ExitStatus, AgentError> {
        Self::check_container_id(id)?;
        Self::check_exec_id(exec_id, true)?;
        match self.processes.wait(id, exec_id, cancelled) {
            Ok(exit) => Ok(exit.to_proto()),
            Err(WaitError::Cancelled) => Err(AgentError::Cancelled),
            Err(WaitError::Unknown) => {
                // Tell an unknown container from an unknown exec.
                self.container(id)?;
                Err(AgentError::UnknownExec {
                    container_id: id.to_owned(),
                    exec_id: exec_id.to_owned(),
                })
            }
        }
    }

    /// ResizePty.
    pub fn resize_pty(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), AgentError> {
        let entry = self.container(id)?;
        Self::check_exec_id(exec_id, true)?;
        let (Ok(w), Ok(h)) = (u16::try_from(width), u16::try_from(height)) else {
            return Err(AgentError::BadRequest(format!(
                "terminal size {width}x{height} is out of range"
            )));
        };
        let io = entry.io(exec_id).ok_or_else(|| AgentError::UnknownExec {
            container_id: id.to_owned(),
            exec_id: exec_id.to_owned(),
        })?;
        let master = io.pty_master.as_ref().ok_or_else(|| {
            AgentError::WrongState(format!(
                "process {exec_id:?} of container {id} has no terminal"
            ))
        })?;
        tty::resize(&**master, w, h).map_err(|e| AgentError::io("resize the terminal", e))
    }

    /// CloseStdin: the process reads EOF. Idempotent.
    pub fn close_stdin(&self, id: &str, exec_id: &str) -> Result<(), AgentError> {
        let entry = self.container(id)?;
        Self::check_exec_id(exec_id, true)?;
        match entry.io(exec_id) {
            Some(io) => {
                io.close_stdin();
                Ok(())
            }
            None if self.processes.get(id, exec_id).is_some() => Ok(()),
            None => Err(AgentError::UnknownExec {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            }),
        }
    }
}
