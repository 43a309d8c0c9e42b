//! The real [`Sandbox`]: one `lcow-vmm` process ([`vm`]), the guest agent it boots, and the
//! stdio pumps between containerd's FIFOs and the agent's streams ([`stdio`]). Every
//! conversion between the task service's types and the agent protocol lives here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use containerd_shim::protos::cgroups_v2::metrics::Metrics;
use lcow_protocol::agent::{self, event::Kind};
use lcow_protocol::client::{ctx, rpc_message, CALL_TIMEOUT};
use lcow_protocol::share::{guest_mount_point, GuestMount};

use super::{
    BootRequest, ContainerSpec, ExecSpec, GuestProcess, Launcher, ProcessEnd, Sandbox,
    SandboxEvent, VmEnd,
};
use crate::cleanup::{self, CleanupError};
use crate::config::Config;
use crate::error::{Result, ShimError};
use crate::mounts::HostMounts;
use crate::options;

pub mod metrics;
pub mod stdio;
pub mod vm;

use stdio::{declared, Pumps, DRAIN_IDLE};
use vm::{Vm, SHARE_TAG};

/// The status of a process lost with its VM or agent.
pub const LOST_STATUS: u32 = 255;
/// How long a lost process's waiter gives the VMM to exit, to name how the VM ended.
const LOST_VM_GRACE: Duration = Duration::from_secs(2);

/// Boots lcow-vmm VMs as the configuration says.
#[derive(Debug)]
pub struct LcowLauncher {
    host: Arc<dyn HostMounts>,
}

impl LcowLauncher {
    /// A launcher whose VMs clean up through `host`.
    pub fn new(host: Arc<dyn HostMounts>) -> Self {
        Self { host }
    }
}

/// The share, then (for a rootfs of layer disks) the layers, scratch and overlay.
fn guest_mounts(spec: &ContainerSpec, share: agent::Mount) -> Vec<agent::Mount> {
    let mut out = vec![share];
    if let Some(layers) = &spec.layers {
        out.extend(layers.guest_mounts(&spec.id));
    }
    out
}

impl Launcher for LcowLauncher {
    fn boot(&self, req: &BootRequest<'_>) -> Result<Arc<dyn Sandbox>> {
        let named = req.options.and_then(options::config_path);
        let (config, path) = Config::load(named.as_deref())
            .map_err(|e| ShimError::internal("cannot read the lcow configuration", &e))?;
        tracing::info!(config = %path.display(), container_id = req.id, "booting a vm");
        let state = super::state_dir(&config.state_dir, req.namespace, req.id);
        match Vm::boot(&config, &state, req.id, req.disks) {
            Ok(vm) => Ok(Arc::new(LcowSandbox {
                vm,
                host: Arc::clone(&self.host),
                pumps: Mutex::new(HashMap::new()),
            })),
            Err(e) => {
                if let Err(c) = cleanup::remove_state_dir(&state, &*self.host) {
                    tracing::error!(error = %crate::error::chain(&c), "after a failed boot");
                }
                Err(ShimError::internal("cannot boot the vm", &e))
            }
        }
    }
}

/// A running lcow VM.
#[derive(Debug)]
pub struct LcowSandbox {
    vm: Vm,
    host: Arc<dyn HostMounts>,
    /// The stdio pumps of each process, by (container, exec) id.
    pumps: Mutex<HashMap<(String, String), Arc<Pumps>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn container_request(id: &str) -> agent::ContainerRequest {
    agent::ContainerRequest {
        container_id: id.to_owned(),
        ..Default::default()
    }
}

impl LcowSandbox {
    fn client(&self) -> &lcow_protocol::agent_ttrpc::AgentClient {
        &self.vm.agent.client
    }

    fn pumps(&self, id: &str, exec_id: &str) -> Option<Arc<Pumps>> {
        lock(&self.pumps)
            .get(&(id.to_owned(), exec_id.to_owned()))
            .cloned()
    }

    /// Why a process was lost: how the VM ended, or the agent's error.
    fn lost_reason(&self, err: &ttrpc::Error) -> String {
        match self.vm.wait_ended(LOST_VM_GRACE) {
            Some(end) => format!("the vm ended ({end})"),
            None => format!("the agent stopped answering: {}", rpc_message(err)),
        }
    }
}

impl Sandbox for LcowSandbox {
    fn state_dir(&self) -> &Path {
        &self.vm.state
    }

    fn shared_dir(&self) -> &Path {
        &self.vm.shared
    }

    fn share_tag(&self) -> &str {
        SHARE_TAG
    }

    fn vmm_pid(&self) -> u32 {
        self.vm.pid
    }

    fn create(&self, spec: &ContainerSpec) -> Result<u32> {
        let opened = Pumps::connect(&self.vm.agent, &spec.id, "", &spec.io)
            .map_err(|e| ShimError::internal("cannot open the stdio streams", &e))?;
        let share =
            GuestMount::for_share(SHARE_TAG, self.vm.protocol, guest_mount_point(SHARE_TAG));
        let resp = self
            .client()
            .create_container(
                ctx(CALL_TIMEOUT),
                &agent::CreateContainerRequest {
                    container_id: spec.id.clone(),
                    oci_spec: spec.oci_spec.clone(),
                    rootfs: spec.rootfs.clone(),
                    guest_mounts: guest_mounts(spec, share.to_agent()),
                    stdio: Some(declared(&spec.io)).into(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("create container", &e))?;
        lock(&self.pumps).insert((spec.id.clone(), String::new()), Arc::new(opened.start()));
        Ok(resp.pid)
    }

    fn start(&self, id: &str) -> Result<u32> {
        Ok(self
            .client()
            .start_process(
                ctx(CALL_TIMEOUT),
                &agent::StartProcessRequest {
                    container_id: id.to_owned(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("start container", &e))?
            .pid)
    }

    fn exec(&self, spec: &ExecSpec) -> Result<u32> {
        let opened = Pumps::connect(&self.vm.agent, &spec.id, &spec.exec_id, &spec.io)
            .map_err(|e| ShimError::internal("cannot open the exec's stdio streams", &e))?;
        let pid = self
            .client()
            .exec_process(
                ctx(CALL_TIMEOUT),
                &agent::ExecProcessRequest {
                    container_id: spec.id.clone(),
                    exec_id: spec.exec_id.clone(),
                    process: spec.process.clone(),
                    stdio: Some(declared(&spec.io)).into(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("exec", &e))?
            .pid;
        lock(&self.pumps).insert(
            (spec.id.clone(), spec.exec_id.clone()),
            Arc::new(opened.start()),
        );
        Ok(pid)
    }

    fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        self.client()
            .signal_process(
                ctx(CALL_TIMEOUT),
                &agent::SignalProcessRequest {
                    container_id: id.to_owned(),
                    exec_id: exec_id.to_owned(),
                    signal,
                    all,
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("kill", &e))?;
        Ok(())
    }

    fn wait(&self, id: &str, exec_id: &str) -> ProcessEnd {
        let result = self.client().wait_process(
            ctx(Duration::ZERO),
            &agent::WaitProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                ..Default::default()
            },
        );
        let end = match result {
            Ok(s) => ProcessEnd {
                status: s.exit_status,
                lost: None,
            },
            Err(e) => ProcessEnd {
                status: LOST_STATUS,
                lost: Some(self.lost_reason(&e)),
            },
        };
        let pumps = lock(&self.pumps).remove(&(id.to_owned(), exec_id.to_owned()));
        if let Some(pumps) = pumps {
            pumps.wait_drained(DRAIN_IDLE);
        }
        end
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.client()
            .pause(ctx(CALL_TIMEOUT), &container_request(id))
            .map_err(|e| ShimError::agent("pause", &e))?;
        Ok(())
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.client()
            .resume(ctx(CALL_TIMEOUT), &container_request(id))
            .map_err(|e| ShimError::agent("resume", &e))?;
        Ok(())
    }

    fn stats(&self, id: &str) -> Result<Metrics> {
        let s = self
            .client()
            .stats(ctx(CALL_TIMEOUT), &container_request(id))
            .map_err(|e| ShimError::agent("stats", &e))?;
        Ok(metrics::to_metrics(&s))
    }

    fn update(&self, id: &str, resources: &[u8]) -> Result<()> {
        self.client()
            .update_container(
                ctx(CALL_TIMEOUT),
                &agent::UpdateContainerRequest {
                    container_id: id.to_owned(),
                    resources: resources.to_vec(),
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("update", &e))?;
        Ok(())
    }

    fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()> {
        self.client()
            .resize_pty(
                ctx(CALL_TIMEOUT),
                &agent::ResizePtyRequest {
                    container_id: id.to_owned(),
                    exec_id: exec_id.to_owned(),
                    width,
                    height,
                    ..Default::default()
                },
            )
            .map_err(|e| ShimError::agent("resize pty", &e))?;
        Ok(())
    }

    fn close_stdin(&self, id: &str, exec_id: &str) {
        if let Some(pumps) = self.pumps(id, exec_id) {
            pumps.close_stdin();
        }
    }

    fn pids(&self, id: &str) -> Result<Vec<GuestProcess>> {
        let resp = self
            .client()
            .list_pids(ctx(CALL_TIMEOUT), &container_request(id))
            .map_err(|e| ShimError::agent("list pids", &e))?;
        Ok(resp
            .processes
            .into_iter()
            .map(|p| GuestProcess {
                pid: p.pid,
                exec_id: p.exec_id,
            })
            .collect())
    }

    fn remove(&self, id: &str) -> Result<()> {
        lock(&self.pumps).retain(|(c, _), _| c != id);
        self.client()
            .remove_container(ctx(CALL_TIMEOUT), &container_request(id))
            .map_err(|e| ShimError::agent("remove container", &e))?;
        Ok(())
    }

    fn next_event(&self) -> Option<SandboxEvent> {
        loop {
            match self
                .client()
                .get_event(ctx(Duration::ZERO), &agent::Empty::default())
            {
                Ok(ev) => {
                    if let Some(Kind::Oom(oom)) = ev.kind {
                        return Some(SandboxEvent::Oom {
                            container_id: oom.container_id,
                        });
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %rpc_message(&e), "event stream ended");
                    return None;
                }
            }
        }
    }

    fn ended(&self) -> Option<VmEnd> {
        self.vm.ended()
    }

    fn wait_ended(&self, timeout: Duration) -> Option<VmEnd> {
        self.vm.wait_ended(timeout)
    }

    fn shutdown(&self) -> std::result::Result<(), CleanupError> {
        self.vm.shutdown(&*self.host)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mounts::fake::FakeMounts;

    #[test]
    fn test_boot_with_missing_vmm_names_it_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("lcow.toml");
        let state = dir.path().join("state");
        std::fs::write(
            &cfg,
            format!(
                "vmm = '{}/none'\nstate_dir = '{}'\n",
                dir.path().display(),
                state.display()
            ),
        )
        .unwrap();
        let mut value = vec![0x12, u8::try_from(cfg.as_os_str().len()).unwrap()];
        value.extend_from_slice(cfg.as_os_str().as_encoded_bytes());
        let options = protobuf::well_known_types::any::Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value,
            ..Default::default()
        };
        let launcher = LcowLauncher::new(Arc::new(FakeMounts::default()));

        let e = launcher
            .boot(&BootRequest {
                namespace: "default",
                id: "c1",
                options: Some(&options),
                disks: &[],
            })
            .unwrap_err();

        let text = e.to_string();
        assert!(text.contains("VMM") && text.contains("none"), "{text}");
        assert!(std::fs::read_dir(&state).map_or(true, |mut d| d.next().is_none()));
    }
}
