//! containerd-shim-lcow-v1, the containerd runtime `io.containerd.lcow.v1` (docs/architecture.md):
//! containerd talks to this shim over ttrpc (task API v2 and v3); the shim boots one lcow-vmm
//! micro-VM per container (or per CRI pod), shares the container's rootfs and bind mounts
//! with it through the VM's file share, and drives the guest agent over hybrid vsock.
//!
//! * [`bootstrap`]: the `start` / serve / `delete` process protocol;
//! * [`service`]: the task service and its state machine; [`process`]: its processes;
//! * [`sandbox`]: the seam under it — one VM and its agent — with [`sandbox::lcow`], the
//!   lcow-vmm implementation (VMM process, agent conversions, stdio pumps);
//! * [`mounts`]: host mounts beneath the share, behind [`mounts::HostMounts`]; [`cleanup`]:
//!   removing them without ever deleting the user's data;
//! * [`config`], [`options`]: the runtime configuration; [`check`]: the host report;
//! * [`sys`]: the host's half (Linux or Windows): mounts, removal, processes, the listener.
//!
//! docs/architecture.md draws the processes and what each module may use.

pub mod bootstrap;
pub mod check;
pub mod cleanup;
pub mod config;
pub mod delete;
pub mod error;
pub mod mounts;
pub mod options;
pub mod process;
pub mod record;
pub mod sandbox;
pub mod service;
pub mod stdio;
pub mod sys;
