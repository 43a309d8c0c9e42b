//! The task service containerd calls (task API v2 and v3: the same messages): each method
//! turns into calls on the VM's agent, and every process end into a TaskExit event.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest, PauseRequest, PidsRequest,
    PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest, StartResponse,
    StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest, WaitRequest,
    WaitResponse,
};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::topics;
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, Task, TtrpcContext};
use lcow_protocol::agent::{self, event::Kind};
use lcow_protocol::client::{ctx, CALL_TIMEOUT};
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::empty::Empty;
use protobuf::MessageDyn;

use crate::config::{Config, ShareProtocol};
use crate::error::{Result, ShimError};
use crate::process::{timestamp, Container, Phase, Process};
use crate::stdio::{HostIo, Pumps, DRAIN_AFTER_EXIT};
use crate::vm::{self, Vm};
use crate::{metrics, mounts, options, record};

/// The exit status reported for processes of a VM that died.
const VM_DIED_STATUS: u32 = 255;

/// Where events go: containerd's publisher, or nowhere (tests).
pub trait Publish: Send + Sync {
    /// Sends one event; failures are logged, never fatal.
    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>);
}

/// containerd's event service.
pub struct ContainerdPublisher {
    publisher: RemotePublisher,
    namespace: String,
}

impl std::fmt::Debug for ContainerdPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdPublisher")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl ContainerdPublisher {
    /// Publishes to containerd in `namespace`.
    pub fn new(publisher: RemotePublisher, namespace: &str) -> Self {
        Self {
            publisher,
            namespace: namespace.to_owned(),
        }
    }
}

impl Publish for ContainerdPublisher {
    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let c = ttrpc::context::with_timeout(5_000_000_000);
        if let Err(e) = self.publisher.publish(c, topic, &self.namespace, event) {
            tracing::warn!(topic, error = %e, "cannot publish event");
        }
    }
}

/// The task service of one shim (one VM).
pub struct Service {
    namespace: String,
    events: Arc<dyn Publish>,
    exit: Arc<ExitSignal>,
    vm: Mutex<Option<Arc<Vm>>>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What Create needs from its request, checked.
struct CreateArgs {
    id: String,
    bundle: PathBuf,
    io: HostIo,
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
    /// A service with no VM yet; `exit` is signalled by Shutdown.
    pub fn new(namespace: &str, events: Arc<dyn Publish>, exit: Arc<ExitSignal>) -> Self {
        Self {
            namespace: namespace.to_owned(),
            events,
            exit,
            vm: Mutex::new(None),
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

    fn vm(&self) -> Result<Arc<Vm>> {
        lock(&self.vm)
            .clone()
            .ok_or_else(|| ShimError::FailedPrecondition("no vm is running".to_owned()))
    }

    /// The VM, booted for container `id` if there is none yet.
    fn vm_for(&self, id: &str, options: Option<&Any>) -> Result<(Arc<Vm>, bool)> {
        let mut slot = lock(&self.vm);
        if let Some(vm) = slot.as_ref() {
            if let Some(ended) = vm.ended() {
                return Err(ShimError::FailedPrecondition(format!(
                    "the pod's vm has ended ({ended})"
                )));
            }
            return Ok((Arc::clone(vm), false));
        }
        let named = options.and_then(options::config_path);
        let (config, path) = Config::load(named.as_deref())
            .map_err(|e| ShimError::internal("cannot read the lcow configuration", &e))?;
        tracing::info!(config = %path.display(), "booting a vm");
        let state = vm::state_dir(&config, &self.namespace, id);
        let vm = Vm::boot(&config, &state, id).map(Arc::new).map_err(|e| {
            mounts::unmount_all(&state);
            ShimError::internal("cannot boot the vm", &e)
        })?;
        self.watch_events(&vm);
        *slot = Some(Arc::clone(&vm));
        Ok((vm, true))
    }

    /// Forwards the agent's OOM events; exits are reported by each process's waiter.
    fn watch_events(&self, vm: &Arc<Vm>) {
        let client = vm.agent.client.clone();
        let events = Arc::clone(&self.events);
        thread::spawn(move || loop {
            match client.get_event(ctx(Duration::ZERO), &agent::Empty::default()) {
                Ok(ev) => {
                    if let Some(Kind::Oom(oom)) = ev.kind {
                        tracing::info!(container_id = %oom.container_id, "oom kill");
                        events.publish(
                            topics::TASK_OOM_EVENT_TOPIC,
                            Box::new(TaskOOM {
                                container_id: oom.container_id,
                                ..Default::default()
                            }),
                        );
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %lcow_protocol::client::rpc_message(&e), "event stream ended");
                    break;
                }
            }
        });
    }

    fn create_args(req: &CreateTaskRequest) -> Result<CreateArgs> {
        if !lcow_protocol::valid_id(&req.id) {
            return Err(ShimError::InvalidArgument(format!(
                "{:?} is not a valid container id",
                req.id
            )));
        }
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(ShimError::Unimplemented("restoring from a checkpoint"));
        }
        Ok(CreateArgs {
            id: req.id.clone(),
            bundle: PathBuf::from(&req.bundle),
            io: HostIo {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            },
        })
    }

    fn create_in_vm(&self, vm: &Vm, args: &CreateArgs, req: &CreateTaskRequest) -> Result<u32> {
        let id = args.id.as_str();
        let spec_path = args.bundle.join("config.json");
        let text = std::fs::read(&spec_path).map_err(|e| {
            ShimError::internal(&format!("cannot read {}", spec_path.display()), &e)
        })?;
        let mut spec: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| ShimError::InvalidArgument(format!("{}: {e}", spec_path.display())))?;
        let rootfs = mounts::mount_rootfs(&vm.shared, id, &args.bundle, &req.rootfs)
            .map_err(|e| ShimError::internal("cannot prepare the rootfs", &e))?;
        mounts::share_binds(&vm.shared, id, &mut spec)
            .map_err(|e| ShimError::internal("cannot share the bind mounts", &e))?;
        let spec = serde_json::to_vec(&spec)
            .map_err(|e| ShimError::Internal(format!("cannot encode the OCI spec: {e}")))?;
        let opened = Pumps::connect(&vm.agent, id, "", &args.io)
            .map_err(|e| ShimError::internal("cannot open the stdio streams", &e))?;
        let resp = vm
            .agent
            .client
            .create_container(
                ctx(CALL_TIMEOUT),
                &agent::CreateContainerRequest {
                    container_id: id.to_owned(),
                    oci_spec: spec,
                    rootfs,
                    guest_mounts: vec![share_mount(id, vm.protocol)],
                    stdio: Some(args.io.declared()).into(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("create container", &e))?;
        let init = Arc::new(Process::new("", args.io.clone(), Vec::new()));
        init.pid.store(resp.pid, Ordering::Relaxed);
        *lock(&init.pumps) = Some(Arc::new(opened.start()));
        lock(&self.containers).insert(
            id.to_owned(),
            Arc::new(Container {
                id: id.to_owned(),
                bundle: args.bundle.clone(),
                init,
                execs: Mutex::new(HashMap::new()),
                paused: Default::default(),
            }),
        );
        Ok(resp.pid)
    }

    /// Reaps `p` in a thread: waits in the agent, lets its output drain, records the status
    /// and publishes TaskExit.
    fn spawn_waiter(&self, vm: &Arc<Vm>, c: &Arc<Container>, p: &Arc<Process>) {
        let (vm, events) = (Arc::clone(vm), Arc::clone(&self.events));
        let (cid, p) = (c.id.clone(), Arc::clone(p));
        thread::spawn(move || {
            let status = match vm.agent.client.wait_process(
                ctx(Duration::ZERO),
                &agent::WaitProcessRequest {
                    container_id: cid.clone(),
                    exec_id: p.exec_id.clone(),
                    ..Default::default()
                },
            ) {
                Ok(s) => s.exit_status,
                Err(e) => {
                    tracing::warn!(container_id = %cid, exec_id = %p.exec_id,
                        error = %lcow_protocol::client::rpc_message(&e),
                        vm = ?vm.ended(), "lost the process: the vm or its agent is gone");
                    VM_DIED_STATUS
                }
            };
            if let Some(pumps) = p.pumps() {
                pumps.wait_drained(DRAIN_AFTER_EXIT);
            }
            let (status, at) = p.set_exited(status);
            tracing::info!(container_id = %cid, exec_id = %p.exec_id, status, "process exited");
            let id = if p.exec_id.is_empty() {
                cid.clone()
            } else {
                p.exec_id.clone()
            };
            events.publish(
                topics::TASK_EXIT_EVENT_TOPIC,
                Box::new(TaskExit {
                    container_id: cid,
                    id,
                    pid: p.pid(),
                    exit_status: status,
                    exited_at: Some(timestamp(at)).into(),
                    ..Default::default()
                }),
            );
        });
    }

    fn do_create(&self, req: &CreateTaskRequest) -> Result<CreateTaskResponse> {
        let args = Self::create_args(req)?;
        if lock(&self.containers).contains_key(&args.id) {
            return Err(ShimError::AlreadyExists(format!("container {}", args.id)));
        }
        let (vm, booted) = self.vm_for(&args.id, req.options.as_ref())?;
        record::write(&args.bundle, &vm.state, booted, vm.pid);
        match self.create_in_vm(&vm, &args, req) {
            Ok(pid) => {
                self.events.publish(
                    topics::TASK_CREATE_EVENT_TOPIC,
                    Box::new(TaskCreate {
                        container_id: args.id.clone(),
                        bundle: req.bundle.clone(),
                        rootfs: req.rootfs.clone(),
                        io: Some(TaskIO {
                            stdin: req.stdin.clone(),
                            stdout: req.stdout.clone(),
                            stderr: req.stderr.clone(),
                            terminal: req.terminal,
                            ..Default::default()
                        })
                        .into(),
                        pid,
                        ..Default::default()
                    }),
                );
                Ok(CreateTaskResponse {
                    pid,
                    ..Default::default()
                })
            }
            Err(e) => {
                tracing::warn!(container_id = %args.id, error = %e, "create failed");
                mounts::unmount_all(&mounts::container_dir(&vm.shared, &args.id));
                if booted {
                    vm.shutdown();
                    *lock(&self.vm) = None;
                }
                Err(e)
            }
        }
    }

    fn do_start(&self, req: &StartRequest) -> Result<StartResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        if p.phase() != Phase::Created {
            return Err(ShimError::FailedPrecondition(format!(
                "process {} of {} is not in the created state",
                req.exec_id, req.id
            )));
        }
        let vm = self.vm()?;
        let client = &vm.agent.client;
        let pid = if req.exec_id.is_empty() {
            client
                .start_process(
                    ctx(CALL_TIMEOUT),
                    &agent::StartProcessRequest {
                        container_id: req.id.clone(),
                        ..Default::default()
                    },
                )
                .map_err(|e| ShimError::agent("start container", &e))?
                .pid
        } else {
            let opened = Pumps::connect(&vm.agent, &req.id, &req.exec_id, &p.io)
                .map_err(|e| ShimError::internal("cannot open the exec's stdio streams", &e))?;
            let pid = client
                .exec_process(
                    ctx(CALL_TIMEOUT),
                    &agent::ExecProcessRequest {
                        container_id: req.id.clone(),
                        exec_id: req.exec_id.clone(),
                        process: p.spec.clone(),
                        stdio: Some(p.io.declared()).into(),
                        ..Default::default()
                    },
                )
                .map_err(|e| ShimError::agent("exec", &e))?
                .pid;
            *lock(&p.pumps) = Some(Arc::new(opened.start()));
            pid
        };
        p.pid.store(pid, Ordering::Relaxed);
        p.set_phase(Phase::Running);
        self.spawn_waiter(&vm, &c, &p);
        if req.exec_id.is_empty() {
            self.events.publish(
                topics::TASK_START_EVENT_TOPIC,
                Box::new(TaskStart {
                    container_id: req.id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
        } else {
            self.events.publish(
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                Box::new(TaskExecStarted {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    pid,
                    ..Default::default()
                }),
            );
        }
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn do_delete(&self, req: &DeleteRequest) -> Result<DeleteResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let (status, at) = match p.phase() {
            Phase::Running => {
                return Err(ShimError::FailedPrecondition(format!(
                    "process {} of {} is still running",
                    req.exec_id, req.id
                )))
            }
            Phase::Created if req.exec_id.is_empty() => {
                // A created container that never ran: kill what the runtime made.
                if let Ok(vm) = self.vm() {
                    let _ = vm.agent.client.signal_process(
                        ctx(CALL_TIMEOUT),
                        &agent::SignalProcessRequest {
                            container_id: req.id.clone(),
                            signal: 9,
                            all: true,
                            ..Default::default()
                        },
                    );
                }
                p.set_exited(128 + 9)
            }
            Phase::Created => p.set_exited(0),
            Phase::Stopped { status, at } => (status, at),
        };
        let resp = DeleteResponse {
            pid: p.pid(),
            exit_status: status,
            exited_at: Some(timestamp(at)).into(),
            ..Default::default()
        };
        if !req.exec_id.is_empty() {
            c.execs().remove(&req.exec_id);
            return Ok(resp);
        }
        if let Ok(vm) = self.vm() {
            if let Err(e) = vm.agent.client.remove_container(
                ctx(CALL_TIMEOUT),
                &agent::ContainerRequest {
                    container_id: req.id.clone(),
                    ..Default::default()
                },
            ) {
                tracing::warn!(container_id = %req.id, error = %lcow_protocol::client::rpc_message(&e), "agent could not remove the container");
            }
            mounts::unmount_all(&mounts::container_dir(&vm.shared, &req.id));
        }
        lock(&self.containers).remove(&req.id);
        record::remove(&c.bundle);
        self.events.publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: req.id.clone(),
                pid: resp.pid,
                exit_status: status,
                exited_at: Some(timestamp(at)).into(),
                id: req.id.clone(),
                ..Default::default()
            }),
        );
        Ok(resp)
    }

    fn do_state(&self, req: &StateRequest) -> Result<StateResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        let (status, exit_status, exited_at) = match p.phase() {
            Phase::Created => (Status::CREATED, 0, None),
            Phase::Running if c.paused.load(Ordering::Relaxed) => (Status::PAUSED, 0, None),
            Phase::Running => (Status::RUNNING, 0, None),
            Phase::Stopped { status, at } => (Status::STOPPED, status, Some(timestamp(at))),
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

    fn do_kill(&self, req: &KillRequest) -> Result<()> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if matches!(p.phase(), Phase::Stopped { .. }) && !req.all {
            return Err(ShimError::NotFound(format!(
                "process {} of {}: already finished",
                req.exec_id, req.id
            )));
        }
        self.vm()?
            .agent
            .client
            .signal_process(
                ctx(CALL_TIMEOUT),
                &agent::SignalProcessRequest {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    signal: req.signal,
                    all: req.all,
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("kill", &e))?;
        Ok(())
    }

    fn do_exec(&self, req: &ExecProcessRequest) -> Result<()> {
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
            let io = HostIo {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            };
            execs.insert(
                req.exec_id.clone(),
                Arc::new(Process::new(&req.exec_id, io, spec)),
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

    fn do_pause(&self, id: &str, pause: bool) -> Result<()> {
        let c = self.container(id)?;
        let client = &self.vm()?.agent.client;
        let r = agent::ContainerRequest {
            container_id: id.to_owned(),
            ..Default::default()
        };
        if pause {
            client
                .pause(ctx(CALL_TIMEOUT), &r)
                .map_err(|e| ShimError::agent("pause", &e))?;
            c.paused.store(true, Ordering::Relaxed);
            self.events.publish(
                topics::TASK_PAUSED_EVENT_TOPIC,
                Box::new(TaskPaused {
                    container_id: id.to_owned(),
                    ..Default::default()
                }),
            );
        } else {
            client
                .resume(ctx(CALL_TIMEOUT), &r)
                .map_err(|e| ShimError::agent("resume", &e))?;
            c.paused.store(false, Ordering::Relaxed);
            self.events.publish(
                topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed {
                    container_id: id.to_owned(),
                    ..Default::default()
                }),
            );
        }
        Ok(())
    }

    fn do_shutdown(&self) {
        if !lock(&self.containers).is_empty() {
            return;
        }
        if let Some(vm) = lock(&self.vm).take() {
            vm.shutdown();
        }
        self.exit.signal();
    }
}

/// The guest mount of the VM's share for container `id`.
fn share_mount(id: &str, protocol: ShareProtocol) -> agent::Mount {
    let (fstype, options) = match protocol {
        ShareProtocol::VirtioFs => ("virtiofs", Vec::new()),
        ShareProtocol::P9 => (
            "9p",
            vec![
                "trans=virtio".to_owned(),
                "version=9p2000.L".to_owned(),
                "msize=512000".to_owned(),
                "cache=mmap".to_owned(),
            ],
        ),
    };
    agent::Mount {
        source: vm::SHARE_TAG.to_owned(),
        target: mounts::guest_share_dir(id),
        fstype: fstype.to_owned(),
        options,
        ..Default::default()
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
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let (status, at) = p.wait();
        Ok(WaitResponse {
            exit_status: status,
            exited_at: Some(timestamp(at)).into(),
            ..Default::default()
        })
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, exec_id = %req.exec_id, signal = req.signal, all = req.all, "kill");
        self.do_kill(&req)?;
        Ok(Empty::new())
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        self.container(&req.id)?;
        let resp = self
            .vm()?
            .agent
            .client
            .list_pids(
                ctx(CALL_TIMEOUT),
                &agent::ContainerRequest {
                    container_id: req.id.clone(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("list pids", &e))?;
        Ok(PidsResponse {
            processes: resp
                .processes
                .iter()
                .map(|p| ProcessInfo {
                    pid: p.pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, exec_id = %req.exec_id, "exec");
        self.do_exec(&req)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        self.process(&req.id, &req.exec_id)?;
        self.vm()?
            .agent
            .client
            .resize_pty(
                ctx(CALL_TIMEOUT),
                &agent::ResizePtyRequest {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    width: req.width,
                    height: req.height,
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("resize pty", &e))?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            if let Some(pumps) = p.pumps() {
                pumps.close_stdin();
            }
        }
        Ok(Empty::new())
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, "pause");
        self.do_pause(&req.id, true)?;
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        tracing::info!(container_id = %req.id, "resume");
        self.do_pause(&req.id, false)?;
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        self.container(&req.id)?;
        let resources = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .ok_or_else(|| ShimError::InvalidArgument("update without resources".into()))?;
        self.vm()?
            .agent
            .client
            .update_container(
                ctx(CALL_TIMEOUT),
                &agent::UpdateContainerRequest {
                    container_id: req.id.clone(),
                    resources,
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("update", &e))?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        self.container(&req.id)?;
        let s = self
            .vm()?
            .agent
            .client
            .stats(
                ctx(CALL_TIMEOUT),
                &agent::ContainerRequest {
                    container_id: req.id.clone(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("stats", &e))?;
        Ok(StatsResponse {
            stats: Some(metrics::to_any(&s)?).into(),
            ..Default::default()
        })
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let c = self.container(&req.id)?;
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: c.init.pid(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> TtrpcResult<Empty> {
        tracing::info!("shutdown");
        self.do_shutdown();
        Ok(Empty::new())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Records topics instead of sending them.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Publish for Recorder {
        fn publish(&self, topic: &str, _: Box<dyn MessageDyn>) {
            lock(&self.0).push(topic.to_owned());
        }
    }

    fn service() -> (Arc<Service>, Arc<Recorder>, Arc<ExitSignal>) {
        let rec = Arc::new(Recorder::default());
        let exit = Arc::new(ExitSignal::default());
        let s = Service::new("default", rec.clone(), Arc::clone(&exit));
        (Arc::new(s), rec, exit)
    }

    fn code(e: ShimError) -> ttrpc::Code {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => s.code(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_task_methods_serve_v2_and_v3() {
        let (s, _, _) = service();
        let methods = crate::bootstrap::task_methods(s);
        for name in crate::bootstrap::TASK_SERVICES {
            for m in [
                "Create", "Start", "Wait", "Kill", "Delete", "Exec", "Stats", "Shutdown",
            ] {
                assert!(methods.contains_key(&format!("/{name}/{m}")), "{name}/{m}");
            }
        }
        assert_eq!(methods.len(), 2 * 17);
    }

    #[test]
    fn test_create_bad_id_is_invalid_argument() {
        let (s, rec, _) = service();
        let req = CreateTaskRequest {
            id: "../x".into(),
            ..Default::default()
        };
        assert_eq!(
            code(s.do_create(&req).unwrap_err()),
            ttrpc::Code::INVALID_ARGUMENT
        );
        assert!(lock(&rec.0).is_empty());
    }

    #[test]
    fn test_unknown_container_is_not_found() {
        let (s, _, _) = service();
        let e = s
            .do_state(&StateRequest {
                id: "nope".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(code(e), ttrpc::Code::NOT_FOUND);
        assert_eq!(
            code(s.do_pause("nope", true).unwrap_err()),
            ttrpc::Code::NOT_FOUND
        );
    }

    #[test]
    fn test_create_with_missing_vm_files_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("lcow.toml");
        std::fs::write(&cfg, format!("vmm = \"{}/none\"\n", dir.path().display())).unwrap();
        let (s, rec, _) = service();
        let mut value = vec![0x12, u8::try_from(cfg.as_os_str().len()).unwrap()];
        value.extend_from_slice(cfg.as_os_str().as_encoded_bytes());
        let req = CreateTaskRequest {
            id: "c1".into(),
            bundle: dir.path().display().to_string(),
            options: Some(Any {
                type_url: "runtimeoptions.v1.Options".into(),
                value,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        let e = s.do_create(&req).unwrap_err();
        assert!(
            e.to_string().contains("VMM") && e.to_string().contains("none"),
            "{e}"
        );
        assert!(lock(&rec.0).is_empty());
    }

    #[test]
    fn test_shutdown_with_no_containers_signals_exit() {
        let (s, _, exit) = service();
        s.do_shutdown();
        exit.wait();
    }
}
