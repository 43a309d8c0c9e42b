//! The task service containerd calls (task API v2 and v3: the same messages). It keeps
//! containerd's side of every container — the task state machine, the events, the host mounts —
//! and drives the VM through the [`Sandbox`] seam, so it runs against a fake in unit tests.
//!
//! What each call answers in each process state follows containerd's runc shim
//! (docs/shim.md has the table): [`create`] (Create, Delete), [`ops`] (the other
//! calls), [`exits`] (reaping: Wait, TaskExit, the VM dying, OOM events).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest, PauseRequest, PidsRequest,
    PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest, StartResponse,
    StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest, WaitRequest,
    WaitResponse,
};
use containerd_shim::{ExitSignal, Task, TtrpcContext};
use protobuf::well_known_types::empty::Empty;

use crate::error::{Result, ShimError};
use crate::mounts::HostMounts;
use crate::process::{timestamp, Container, Phase, Process};
use crate::sandbox::{Launcher, Sandbox};

mod create;
mod exits;
mod ops;
mod publish;

#[cfg(test)]
mod tests;

pub use publish::{ContainerdPublisher, Publish};

/// A process's state as containerd sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Created (init) or added by Exec, not started.
    Created,
    /// Started and not ended, container not paused.
    Running,
    /// Not ended, container frozen.
    Paused,
    /// Ended.
    Stopped,
}

/// The state of `p`, a process of `c` (an exec of a paused container reads as paused, as
/// runc's shim has it).
pub fn task_state(c: &Container, p: &Process) -> TaskState {
    match p.phase() {
        Phase::Stopped { .. } => TaskState::Stopped,
        _ if c.is_paused() => TaskState::Paused,
        Phase::Created => TaskState::Created,
        Phase::Running => TaskState::Running,
    }
}

/// The task service of one shim (one VM).
pub struct Service {
    namespace: String,
    events: Arc<dyn Publish>,
    exit: Arc<ExitSignal>,
    launcher: Arc<dyn Launcher>,
    host: Arc<dyn HostMounts>,
    sandbox: Mutex<Option<Arc<dyn Sandbox>>>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("namespace", &self.namespace)
            .field("containers", &lock(&self.containers).len())
            .finish()
    }
}

impl Service {
    /// A service with no VM yet: `launcher` boots it at the first Create, `host` makes the
    /// containers' host mounts; `exit` is signalled by Shutdown.
    pub fn new(
        namespace: &str,
        events: Arc<dyn Publish>,
        exit: Arc<ExitSignal>,
        launcher: Arc<dyn Launcher>,
        host: Arc<dyn HostMounts>,
    ) -> Self {
        Self {
            namespace: namespace.to_owned(),
            events,
            exit,
            launcher,
            host,
            sandbox: Mutex::new(None),
            containers: Mutex::new(HashMap::new()),
        }
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        lock(&self.containers)
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("container {id}")))
    }

    fn process(&self, id: &str, exec_id: &str) -> Result<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        let p = c
            .process(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id} in container {id}")))?;
        Ok((c, p))
    }

    fn sandbox(&self) -> Result<Arc<dyn Sandbox>> {
        lock(&self.sandbox)
            .clone()
            .ok_or_else(|| ShimError::FailedPrecondition("no vm is running".to_owned()))
    }

    fn do_wait(&self, req: &WaitRequest) -> Result<WaitResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let (status, at) = p.wait();
        // The exit is recorded and published under this lock: once it is free, the TaskExit is
        // out, so whoever Wait releases already has it.
        drop(lock(&c.exits));
        Ok(WaitResponse {
            exit_status: status,
            exited_at: Some(timestamp(at)).into(),
            ..Default::default()
        })
    }
}

type TtrpcResult<T> = ttrpc::Result<T>;

impl Task for Service {
    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> TtrpcResult<CreateTaskResponse> {
        tracing::info!(container_id = %req.id, "create");
        Ok(self.do_create(&req)?)
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        tracing::info!(container_id = %req.id, exec_id = %req.exec_id, "start");
        Ok(self.do_start(&req)?)
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        tracing::info!(container_id = %req.id, exec_id = %req.exec_id, "delete");
        Ok(self.do_delete(&req)?)
    }

    fn state(&self, _: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        Ok(self.do_state(&req)?)
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        Ok(self.do_wait(&req)?)
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, exec_id = %req.exec_id, signal = req.signal, all = req.all, "kill");
        self.do_kill(&req)?;
        Ok(Empty::new())
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        Ok(self.do_pids(&req)?)
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, exec_id = %req.exec_id, "exec");
        self.do_exec(&req)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        self.do_resize_pty(&req)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        self.do_close_io(&req)?;
        Ok(Empty::new())
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, "pause");
        self.do_pause(&req.id)?;
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, "resume");
        self.do_resume(&req.id)?;
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        self.do_update(&req)?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        Ok(self.do_stats(&req)?)
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        Ok(self.do_connect(&req))
    }

    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> TtrpcResult<Empty> {
        tracing::info!("shutdown");
        self.do_shutdown();
        Ok(Empty::new())
    }
}
