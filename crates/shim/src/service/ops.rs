//! The task calls other than Create, Delete and Wait, each answering in each state as
//! containerd's runc shim does (docs/shim.md). Where runc's shim sends a plain error (which
//! containerd sees as Unknown) for a call the state does not allow, we send
//! FAILED_PRECONDITION with the same words.

use std::sync::atomic::Ordering;

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, ExecProcessRequest, KillRequest, PidsRequest,
    PidsResponse, ResizePtyRequest, StartRequest, StartResponse, StateRequest, StateResponse,
    StatsRequest, StatsResponse, UpdateTaskRequest,
};
use containerd_shim::protos::events::task::{
    TaskExecAdded, TaskExecStarted, TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim::protos::topics;
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use protobuf::well_known_types::any::Any;
use protobuf::Message;

use super::{lock, task_state, Service, TaskState};
use crate::error::{chain, Result, ShimError};
use crate::process::{timestamp, Phase, Process};
use crate::sandbox::ExecSpec;
use crate::stdio::HostIo;

/// The type URL containerd's typeurl registry knows the cgroup v2 metrics by.
pub const METRICS_TYPE_URL: &str = "io.containerd.cgroups.v2.Metrics";
/// The type URL of runc's per-process details in Pids (`exec_id`, field 1).
pub const PROCESS_DETAILS_TYPE_URL: &str = "containerd.runc.v1.ProcessDetails";

fn refuse(what: &str) -> ShimError {
    ShimError::FailedPrecondition(what.to_owned())
}

/// `containerd.runc.v1.ProcessDetails { exec_id }`, as runc's shim attaches to an exec's pid.
fn process_details(exec_id: &str) -> Result<Any> {
    let mut value = Vec::new();
    let mut out = protobuf::CodedOutputStream::vec(&mut value);
    out.write_string(1, exec_id)
        .and_then(|()| out.flush())
        .map_err(|e| ShimError::Internal(format!("cannot encode process details: {e}")))?;
    drop(out);
    Ok(Any {
        type_url: PROCESS_DETAILS_TYPE_URL.to_owned(),
        value,
        ..Default::default()
    })
}

impl Service {
    pub(super) fn do_start(&self, req: &StartRequest) -> Result<StartResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        match task_state(&c, &p) {
            TaskState::Created => {}
            TaskState::Running => return Err(refuse("cannot start a running process")),
            TaskState::Paused => return Err(refuse("cannot start a paused process")),
            TaskState::Stopped => return Err(refuse("cannot start a stopped process")),
        }
        let sb = self.sandbox()?;
        let pid = if req.exec_id.is_empty() {
            // The init's waiter runs from Create: holding the exit lock keeps its TaskExit
            // after this TaskStart, and an end it recorded first is not overwritten.
            let _order = lock(&c.exits);
            let pid = sb.start(&req.id)?;
            p.pid.store(pid, Ordering::Relaxed);
            p.set_running();
            self.events.publish(
                topics::TASK_START_EVENT_TOPIC,
                Box::new(TaskStart {
                    container_id: req.id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
            pid
        } else {
            if c.init.stopped() {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {} init process is not running",
                    req.id
                )));
            }
            let pid = sb.exec(&ExecSpec {
                id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                process: p.spec.clone(),
                io: p.io.clone(),
            })?;
            p.pid.store(pid, Ordering::Relaxed);
            p.set_running();
            self.events.publish(
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(TaskExecStarted {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
            self.spawn_waiter(&sb, &c, &p);
            pid
        };
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    pub(super) fn do_state(&self, req: &StateRequest) -> Result<StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let (status, exit_status, exited_at) = match (task_state(&c, &p), p.phase()) {
            (_, Phase::Stopped { status, at }) => (Status::STOPPED, status, Some(timestamp(at))),
            (TaskState::Paused, _) => (Status::PAUSED, 0, None),
            (TaskState::Created, _) => (Status::CREATED, 0, None),
            _ => (Status::RUNNING, 0, None),
        };
        Ok(StateResponse {
            id: req.id.clone(),
            bundle: c.bundle.display().to_string(),
            pid: p.pid(),
            status: status.into(),
            stdin: p.io.stdin.clone(),
            stdout: p.io.stdout.clone(),
            stderr: p.io.stderr.clone(),
            terminal: p.io.terminal,
            exit_status,
            exited_at: exited_at.into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    pub(super) fn do_kill(&self, req: &KillRequest) -> Result<()> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let state = task_state(&c, &p);
        if req.exec_id.is_empty() {
            if state == TaskState::Stopped {
                // runc's shim: `kill --all` of an ended container succeeds; a plain kill does not.
                return if req.all {
                    Ok(())
                } else {
                    Err(ShimError::NotFound("process already finished".to_owned()))
                };
            }
            return self.sandbox()?.kill(&req.id, "", req.signal, req.all);
        }
        match p.phase() {
            Phase::Created => Err(refuse("process not created")),
            Phase::Stopped { .. } => {
                Err(ShimError::NotFound("process already finished".to_owned()))
            }
            // `all` means the container's cgroup, which an exec has not: runc's shim drops it.
            Phase::Running => self
                .sandbox()?
                .kill(&req.id, &req.exec_id, req.signal, false),
        }
    }

    pub(super) fn do_exec(&self, req: &ExecProcessRequest) -> Result<()> {
        let c = self.container(&req.id)?;
        if !lcow_protocol::valid_id(&req.exec_id) {
            return Err(ShimError::InvalidArgument(format!(
                "{:?} is not a valid exec id",
                req.exec_id
            )));
        }
        let spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| ShimError::InvalidArgument("exec without a process spec".into()))?;
        serde_json::from_slice::<serde_json::Value>(&spec)
            .map_err(|e| ShimError::InvalidArgument(format!("the exec's process spec: {e}")))?;
        {
            let mut execs = c.execs();
            if execs.contains_key(&req.exec_id) {
                return Err(ShimError::AlreadyExists(format!("exec {}", req.exec_id)));
            }
            match task_state(&c, &c.init) {
                TaskState::Paused => return Err(refuse("cannot exec in a paused state")),
                TaskState::Stopped => return Err(refuse("cannot exec in a stopped state")),
                TaskState::Created | TaskState::Running => {}
            }
            let io = HostIo {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            };
            execs.insert(
                req.exec_id.clone(),
                std::sync::Arc::new(Process::new(&req.exec_id, io, spec)),
            );
        }
        self.events.publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    pub(super) fn do_pause(&self, id: &str) -> Result<()> {
        let c = self.container(id)?;
        match task_state(&c, &c.init) {
            TaskState::Running => {}
            TaskState::Created => return Err(refuse("cannot pause task in created state")),
            TaskState::Paused => return Err(refuse("cannot pause a paused container")),
            TaskState::Stopped => return Err(refuse("cannot pause a stopped container")),
        }
        self.sandbox()?.pause(id)?;
        c.paused.store(true, Ordering::Relaxed);
        self.events.publish(
            topics::TASK_PAUSED_EVENT_TOPIC,
            Box::new(TaskPaused {
                container_id: id.to_owned(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    pub(super) fn do_resume(&self, id: &str) -> Result<()> {
        let c = self.container(id)?;
        match task_state(&c, &c.init) {
            TaskState::Paused => {}
            TaskState::Created => return Err(refuse("cannot resume task in created state")),
            TaskState::Running => return Err(refuse("cannot resume a running process")),
            TaskState::Stopped => return Err(refuse("cannot resume a stopped container")),
        }
        self.sandbox()?.resume(id)?;
        c.paused.store(false, Ordering::Relaxed);
        self.events.publish(
            topics::TASK_RESUMED_EVENT_TOPIC,
            Box::new(TaskResumed {
                container_id: id.to_owned(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    pub(super) fn do_pids(&self, req: &PidsRequest) -> Result<PidsResponse> {
        self.container(&req.id)?;
        let processes = self
            .sandbox()?
            .pids(&req.id)?
            .into_iter()
            .map(|p| {
                let info = if p.exec_id.is_empty() {
                    None
                } else {
                    Some(process_details(&p.exec_id)?)
                };
                Ok(ProcessInfo {
                    pid: p.pid,
                    info: info.into(),
                    ..Default::default()
                })
            })
            .collect::<Result<_>>()?;
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    pub(super) fn do_stats(&self, req: &StatsRequest) -> Result<StatsResponse> {
        self.container(&req.id)?;
        let metrics = self.sandbox()?.stats(&req.id)?;
        let value = metrics
            .write_to_bytes()
            .map_err(|e| ShimError::Internal(format!("cannot encode metrics: {e}")))?;
        Ok(StatsResponse {
            stats: Some(Any {
                type_url: METRICS_TYPE_URL.to_owned(),
                value,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
    }

    pub(super) fn do_update(&self, req: &UpdateTaskRequest) -> Result<()> {
        let c = self.container(&req.id)?;
        if c.init.stopped() {
            return Err(refuse("cannot update a stopped container"));
        }
        let resources = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| ShimError::InvalidArgument("update without resources".into()))?;
        self.sandbox()?.update(&req.id, &resources)
    }

    pub(super) fn do_resize_pty(&self, req: &ResizePtyRequest) -> Result<()> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        match p.phase() {
            // Nothing to resize yet (an exec's terminal comes with its start).
            Phase::Created if !req.exec_id.is_empty() => Ok(()),
            Phase::Stopped { .. } if !req.exec_id.is_empty() => {
                Err(refuse("cannot resize a stopped container"))
            }
            // runc's shim answers ok for an ended init: its console is gone with it.
            Phase::Stopped { .. } => Ok(()),
            _ => self
                .sandbox()?
                .resize_pty(&req.id, &req.exec_id, req.width, req.height),
        }
    }

    pub(super) fn do_close_io(&self, req: &CloseIORequest) -> Result<()> {
        self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            if let Ok(sb) = self.sandbox() {
                sb.close_stdin(&req.id, &req.exec_id);
            }
        }
        Ok(())
    }

    pub(super) fn do_connect(&self, req: &ConnectRequest) -> ConnectResponse {
        // runc's shim answers for any id, with task_pid 0 when it does not know it.
        let task_pid = self.container(&req.id).map_or(0, |c| c.init.pid());
        ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        }
    }

    /// With containers left, nothing (a pod's shim outlives each container's Delete);
    /// otherwise the VM is powered off and cleaned up and the shim exits.
    pub(super) fn do_shutdown(&self) {
        if !lock(&self.containers).is_empty() {
            return;
        }
        if let Some(sb) = lock(&self.sandbox).take() {
            if let Err(e) = sb.shutdown() {
                tracing::error!(error = %chain(&e), "cannot clean up the vm");
            }
        }
        self.exit.signal();
    }
}
