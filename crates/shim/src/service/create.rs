//! Create and Delete: a container's host mounts, its record in the bundle, and its place in
//! the VM (booting the VM for the first container, joining it for a pod's later ones).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::api::{CreateTaskRequest, CreateTaskResponse, DeleteRequest, DeleteResponse};
use containerd_shim::protos::events::task::{TaskCreate, TaskDelete, TaskIO};
use containerd_shim::protos::topics;
use protobuf::well_known_types::any::Any;

use super::{lock, task_state, Service, TaskState};
use crate::error::{chain, Result, ShimError};
use crate::mounts::layers::LayerDisks;
use crate::process::{timestamp, Container, Process};
use crate::sandbox::{BootRequest, ContainerSpec, Sandbox};
use crate::stdio::HostIo;
use crate::{cleanup, mounts, record};
use lcow_protocol::layers::LayeredRootfs;

/// How long Delete of a created, never-started container waits for its init to die of the
/// SIGKILL it sends.
const CREATED_KILL_WAIT: Duration = Duration::from_secs(10);

/// What Create needs from its request, checked.
struct CreateArgs {
    id: String,
    bundle: PathBuf,
    io: HostIo,
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

impl Service {
    /// The VM, booted for container `id` (with `layers`' disks) if there is none yet; whether
    /// it was booted now.
    fn sandbox_for(
        &self,
        id: &str,
        options: Option<&Any>,
        layers: Option<&LayerDisks>,
    ) -> Result<(Arc<dyn Sandbox>, bool)> {
        let mut slot = lock(&self.sandbox);
        if let Some(sb) = slot.as_ref() {
            if let Some(end) = sb.ended() {
                return Err(ShimError::FailedPrecondition(format!(
                    "the pod's vm has ended ({end})"
                )));
            }
            if layers.is_some() {
                return Err(ShimError::FailedPrecondition(format!(
                    "container {id}'s rootfs is lcow-layer disks and the pod's vm already runs: \
                     adding disks to a running vm is not supported yet"
                )));
            }
            return Ok((Arc::clone(sb), false));
        }
        let sb = self.launcher.boot(&BootRequest {
            namespace: &self.namespace,
            id,
            options,
            disks: layers.map_or(&[], |l| &l.disks[..]),
        })?;
        self.watch_events(&sb);
        *slot = Some(Arc::clone(&sb));
        Ok((sb, true))
    }

    /// The container's host mounts and its creation in the VM; its init's pid.
    fn create_in(
        &self,
        sb: &dyn Sandbox,
        args: &CreateArgs,
        req: &CreateTaskRequest,
        layers: Option<&LayerDisks>,
    ) -> Result<u32> {
        let id = args.id.as_str();
        let spec_path = args.bundle.join("config.json");
        let text = std::fs::read(&spec_path).map_err(|e| {
            ShimError::internal(&format!("cannot read {}", spec_path.display()), &e)
        })?;
        let mut spec: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| ShimError::InvalidArgument(format!("{}: {e}", spec_path.display())))?;
        let share = (sb.shared_dir(), sb.share_tag());
        let rootfs = match layers {
            // The agent builds it from the VM's disks: nothing to mount on the host.
            Some(_) => LayeredRootfs::rootfs(id),
            None => mounts::mount_rootfs(&*self.host, share, id, &args.bundle, &req.rootfs)
                .map_err(|e| ShimError::internal("cannot prepare the rootfs", &e))?,
        };
        mounts::share_binds(&*self.host, share, id, &mut spec)
            .map_err(|e| ShimError::internal("cannot share the bind mounts", &e))?;
        let oci_spec = serde_json::to_vec(&spec)
            .map_err(|e| ShimError::Internal(format!("cannot encode the OCI spec: {e}")))?;
        sb.create(&ContainerSpec {
            id: id.to_owned(),
            oci_spec,
            rootfs,
            layers: layers.map(|l| l.rootfs.clone()),
            io: args.io.clone(),
        })
    }

    /// Unmounts and removes container `id`'s directory beneath the share.
    fn remove_container_dir(&self, sb: &dyn Sandbox, id: &str) -> Result<()> {
        let dir = mounts::container_dir(sb.shared_dir(), id);
        cleanup::remove_unmounted(&dir, &*self.host).map_err(|e| {
            tracing::error!(container_id = id, error = %chain(&e), "cleanup failed");
            ShimError::internal(&format!("cannot clean up container {id}"), &e)
        })
    }

    pub(super) fn do_create(&self, req: &CreateTaskRequest) -> Result<CreateTaskResponse> {
        let args = create_args(req)?;
        if lock(&self.containers).contains_key(&args.id) {
            return Err(ShimError::AlreadyExists(format!("container {}", args.id)));
        }
        let layers = LayerDisks::parse(&req.rootfs)
            .map_err(|e| ShimError::InvalidArgument(format!("the rootfs: {e}")))?;
        let (sb, booted) = self.sandbox_for(&args.id, req.options.as_ref(), layers.as_ref())?;
        record::write(&args.bundle, sb.state_dir(), booted, sb.vmm_pid());
        let pid = match self.create_in(&*sb, &args, req, layers.as_ref()) {
            Ok(pid) => pid,
            Err(e) => {
                tracing::warn!(container_id = %args.id, error = %e, "create failed");
                let mut e = e;
                let mut clean = true;
                if let Err(c) = self.remove_container_dir(&*sb, &args.id) {
                    e = ShimError::Internal(format!("{e}; and then {c}"));
                    clean = false;
                }
                if booted {
                    *lock(&self.sandbox) = None;
                    if let Err(c) = sb.shutdown() {
                        tracing::error!(error = %chain(&c), "cannot clean up the vm");
                        e = ShimError::Internal(format!("{e}; and then {}", chain(&c)));
                        clean = false;
                    }
                }
                // What is left stays named in the bundle, for containerd's `delete`.
                if clean {
                    record::remove(&args.bundle);
                }
                return Err(e);
            }
        };
        let init = Arc::new(Process::new("", args.io.clone(), Vec::new()));
        init.pid.store(pid, std::sync::atomic::Ordering::Relaxed);
        let c = Arc::new(Container::new(&args.id, args.bundle.clone(), init));
        lock(&self.containers).insert(args.id.clone(), Arc::clone(&c));
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
        // The init process exists from now on (runc's shim reaps it from Create too): a Kill
        // before Start ends it, and its exit is reported.
        self.spawn_waiter(&sb, &c, &c.init);
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    pub(super) fn do_delete(&self, req: &DeleteRequest) -> Result<DeleteResponse> {
        let (c, p) = self.process(&req.id, &req.exec_id)?;
        match task_state(&c, &p) {
            TaskState::Running => {
                return Err(ShimError::FailedPrecondition(
                    "cannot delete a running process".to_owned(),
                ))
            }
            TaskState::Paused => {
                return Err(ShimError::FailedPrecondition(
                    "cannot delete a paused process".to_owned(),
                ))
            }
            TaskState::Created if req.exec_id.is_empty() => {
                // A container that never ran: end its init, whose waiter reports the exit.
                let sb = self.sandbox()?;
                if let Err(e) = sb.kill(&req.id, "", 9, true) {
                    // It may have ended on its own just now: then its waiter reports it.
                    if !p.wait_timeout(Duration::from_secs(1)) {
                        return Err(e);
                    }
                }
                if !p.wait_timeout(CREATED_KILL_WAIT) {
                    return Err(ShimError::Internal(format!(
                        "container {}: its init did not end within {CREATED_KILL_WAIT:?} of SIGKILL",
                        req.id
                    )));
                }
            }
            // An exec that never started has no process: its waiters learn status 0.
            TaskState::Created => {
                p.set_exited(0);
            }
            TaskState::Stopped => {}
        }
        let (status, at) = p.wait();
        // The waiter records and publishes an exit under this lock: once it is free, the
        // TaskExit is out, and the TaskDelete below follows it.
        drop(lock(&c.exits));
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
        if let Ok(sb) = self.sandbox() {
            if let Err(e) = sb.remove(&req.id) {
                tracing::warn!(container_id = %req.id, error = %e, "the agent could not remove the container");
            }
            // Fails closed: the container stays known, so a later Delete tries again.
            self.remove_container_dir(&*sb, &req.id)?;
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
                ..Default::default()
            }),
        );
        Ok(resp)
    }
}
