//! containerd-shim-lcow-v1, the containerd runtime `io.containerd.lcow.v1` (DESIGN.md §2):
//! containerd talks to this shim over ttrpc (task API v2 and v3); the shim boots one lcow-vmm
//! micro-VM per container (or per CRI pod), shares the container's rootfs and bind mounts
//! with it through the VM's file share, and drives the guest agent over hybrid vsock.
//!
//! * [`bootstrap`]: the `start` / serve / `delete` process protocol;
//! * [`service`]: the task service; [`process`]: its processes; [`stdio`]: FIFOs ↔ vsock;
//! * [`vm`]: the VMM process and its agent; [`mounts`]: host mounts beneath the share;
//! * [`config`], [`options`]: the runtime configuration; [`check`]: the host report.

pub mod bootstrap;
pub mod check;
pub mod config;
pub mod delete;
pub mod error;
pub mod metrics;
pub mod mounts;
pub mod options;
pub mod process;
pub mod record;
pub mod service;
pub mod stdio;
pub mod vm;
