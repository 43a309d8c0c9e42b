//! The seam under the task service (runwasi's `Instance` shape): a [`Sandbox`] is one VM with
//! its agent, and a [`Launcher`] boots one. The task service ([`crate::service`]) keeps the
//! containerd side (state machine, events, host mounts) and talks only to these traits; it
//! knows no agent protobuf. [`lcow`] is the real implementation (lcow-vmm and lcow-agent, the
//! conversions to the agent protocol, the stdio pumps); `fake` (tests) is a scripted one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_shim::protos::cgroups_v2::metrics::Metrics;
use lcow_protocol::vm::VmExit;
use protobuf::well_known_types::any::Any;

use crate::error::Result;
use crate::stdio::HostIo;

pub mod lcow;

#[cfg(test)]
pub mod fake;

/// What booting a VM needs from the first Create.
#[derive(Debug, Clone)]
pub struct BootRequest<'a> {
    /// containerd's namespace.
    pub namespace: &'a str,
    /// The container the VM is booted for (a CRI pod's sandbox container).
    pub id: &'a str,
    /// Create's runtime options (they may name the configuration file).
    pub options: Option<&'a Any>,
    /// The VM's disks (the first container's layer disks), in order.
    pub disks: &'a [lcow_protocol::vm::DiskSpec],
}

/// Boots VMs.
pub trait Launcher: Send + Sync + fmt::Debug {
    /// Boots a VM and waits for its agent.
    fn boot(&self, req: &BootRequest<'_>) -> Result<std::sync::Arc<dyn Sandbox>>;
}

/// A container to create in the VM.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The container id.
    pub id: String,
    /// The OCI spec (JSON) with bind sources already rewritten to guest paths.
    pub oci_spec: Vec<u8>,
    /// The guest path of the rootfs (for a rootfs of layer disks: where `layers` puts it).
    pub rootfs: String,
    /// A rootfs the agent builds from the VM's disks, instead of one in the share.
    pub layers: Option<lcow_protocol::layers::LayeredRootfs>,
    /// containerd's FIFOs for the init process.
    pub io: HostIo,
}

/// An exec to start in the VM.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    /// The container id.
    pub id: String,
    /// The exec id.
    pub exec_id: String,
    /// The OCI process (JSON).
    pub process: Vec<u8>,
    /// containerd's FIFOs for it.
    pub io: HostIo,
}

/// How a process ended, as the sandbox learned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEnd {
    /// The status as a shell reports it (128 + signal for a signal).
    pub status: u32,
    /// Set when the process was lost with its VM or agent: why.
    pub lost: Option<String>,
}

/// A process of a container, as the guest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestProcess {
    /// The guest pid.
    pub pid: u32,
    /// The exec id, when the process is one of containerd's execs; empty otherwise.
    pub exec_id: String,
}

/// Something the VM reports on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxEvent {
    /// A container's cgroup had a process OOM-killed.
    Oom {
        /// The container.
        container_id: String,
    },
}

/// How a VM ended, as the shim saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmEnd {
    /// lcow-vmm exited; its status says how.
    Exited(VmExit),
    /// The shim could not wait for the VMM.
    Unknown,
}

impl fmt::Display for VmEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmEnd::Exited(e) => e.fmt(f),
            VmEnd::Unknown => f.write_str("unknown"),
        }
    }
}

/// One VM and its agent. Every method may be called from any thread; the ones that block say
/// so.
pub trait Sandbox: Send + Sync + fmt::Debug {
    /// The VM's state directory.
    fn state_dir(&self) -> &Path;
    /// The host directory the VM's share serves.
    fn shared_dir(&self) -> &Path;
    /// The share's tag (guest paths of the shared files derive from it).
    fn share_tag(&self) -> &str;
    /// The VMM's pid.
    fn vmm_pid(&self) -> u32;

    /// Creates a container (its init process exists, not started); its pid.
    fn create(&self, spec: &ContainerSpec) -> Result<u32>;
    /// Starts the init process of container `id`; its pid.
    fn start(&self, id: &str) -> Result<u32>;
    /// Starts an exec; its pid.
    fn exec(&self, spec: &ExecSpec) -> Result<u32>;
    /// Sends `signal` to a process (with `all`, to every process of the container).
    fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()>;
    /// Blocks until the process ended and its output reached containerd (or the VM died).
    fn wait(&self, id: &str, exec_id: &str) -> ProcessEnd;
    /// Freezes the container.
    fn pause(&self, id: &str) -> Result<()>;
    /// Thaws it.
    fn resume(&self, id: &str) -> Result<()>;
    /// The container's cgroup figures as containerd's v2 metrics.
    fn stats(&self, id: &str) -> Result<Metrics>;
    /// Applies OCI `LinuxResources` (JSON).
    fn update(&self, id: &str, resources: &[u8]) -> Result<()>;
    /// Resizes a process's terminal.
    fn resize_pty(&self, id: &str, exec_id: &str, width: u32, height: u32) -> Result<()>;
    /// Closes a process's stdin (it reads EOF).
    fn close_stdin(&self, id: &str, exec_id: &str);
    /// The container's processes.
    fn pids(&self, id: &str) -> Result<Vec<GuestProcess>>;
    /// Removes a container whose processes have ended.
    fn remove(&self, id: &str) -> Result<()>;

    /// Blocks until the VM reports something; `None` once it never will again.
    fn next_event(&self) -> Option<SandboxEvent>;
    /// How the VM ended, if it has.
    fn ended(&self) -> Option<VmEnd>;
    /// Blocks until the VM ended or `timeout` passed; how it ended.
    fn wait_ended(&self, timeout: Duration) -> Option<VmEnd>;
    /// Powers the VM off (killing it when it lingers) and removes its state directory.
    fn shutdown(&self) -> std::result::Result<(), crate::cleanup::CleanupError>;
}

/// Where a VM's state directory is: `<state_dir>/<16 hex digits of FNV-1a("namespace/id")>`,
/// short enough for socket paths, and stable across shim invocations (`delete` finds it again).
pub fn state_dir(root: &Path, namespace: &str, id: &str) -> PathBuf {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace.bytes().chain([b'/']).chain(id.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    root.join(format!("{hash:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_state_dir_is_short_stable_and_distinct() {
        let root = Path::new("/run/lcow");
        let a = state_dir(root, "default", "test-container-1");
        assert_eq!(a, state_dir(root, "default", "test-container-1"));
        assert_ne!(a, state_dir(root, "default", "test-container-2"));
        assert_ne!(a, state_dir(root, "k8s.io", "test-container-1"));
        assert!(a.join("v.sock_1025").as_os_str().len() < 60);
    }
}
