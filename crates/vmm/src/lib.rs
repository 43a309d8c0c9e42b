//! `lcow-vmm`, the virtual machine monitor (docs/architecture.md: the `lcow-vmm` box, one process
//! per VM, between the shim above and KVM below). It lays out guest memory, boots our guest
//! kernel — the uncompressed `vmlinux` through its PVH entry, or a bzImage through the 64-bit
//! Linux boot protocol — with an initramfs, runs one thread per vCPU on the
//! [`lcow_hypervisor`] traits, and serves the legacy devices of [`lcow_devices`] until the
//! guest powers off, reboots or fails. Virtio devices sit on virtio-mmio slots declared on the
//! kernel command line ([`virtio`]): vsock, whose hybrid-vsock socket (`--vsock PATH`) is how
//! the host reaches the guest agent, and one virtio-9p or virtio-fs device per shared host
//! directory (`--share TAG=PATH,...`), served by `lcow_fs`.
//!
//! The binary `lcow-vmm run --kernel K [--initrd I] ...` (or `run --launch FILE`, the shim's
//! JSON [`lcow_protocol::vm::VmLaunch`]) is a thin CLI over [`vmm::run`]; its exit status is
//! [`lcow_protocol::vm::VmExit`]'s. docs/architecture.md has the whole picture.

#![deny(missing_docs)]

pub mod boot;
pub mod cmdline;
pub mod config;
pub mod cpuid;
pub mod error;
pub mod layout;
pub mod memory;
pub mod monitor;
pub mod mptable;
pub mod panic_watch;
mod sys;
pub mod vcpu;
pub mod vcpu_error;
pub mod virtio;
pub mod vmm;

pub use config::{parse_size, Console, VmConfig};
pub use monitor::ExitReason;
pub use vmm::{run, VmmError};
