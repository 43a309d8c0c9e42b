//! `lcow-vmm run`'s host check and `lcow-vmm probe` on Linux: a /dev/kvm that can boot a
//! Linux guest.

use anyhow::bail;
use lcow_hypervisor::kvm::{kvm_kind, KvmKind};
use lcow_protocol::vm::HostProbe;

/// The escape hatch that lets `run` try a KVM-PVM host anyway.
const ALLOW_PVM_ENV: &str = "LCOW_ALLOW_PVM";

/// Refuses hosts whose /dev/kvm cannot boot a Linux guest, before anything is loaded.
pub fn check() -> anyhow::Result<()> {
    match kvm_kind() {
        KvmKind::Hardware(_) => Ok(()),
        KvmKind::Missing => bail!(
            "no /dev/kvm: load kvm_intel or kvm_amd (or give this user read and write access \
             to /dev/kvm)"
        ),
        KvmKind::Pvm if std::env::var(ALLOW_PVM_ENV).is_ok_and(|v| v == "1") => {
            tracing::warn!(
                "/dev/kvm is KVM-PVM: a normal Linux kernel will not boot here \
                 ({ALLOW_PVM_ENV}=1 given, trying anyway)"
            );
            Ok(())
        }
        KvmKind::Pvm => bail!(
            "this host's /dev/kvm is KVM-PVM, a software hypervisor on which a normal Linux \
             kernel cannot boot; run under `tests/rig/run -- lcow-vmm run ...` or on a host \
             with hardware virtualization (set {ALLOW_PVM_ENV}=1 to try anyway)"
        ),
        KvmKind::Unknown => {
            tracing::warn!("{}; trying anyway", KvmKind::Unknown.explain());
            Ok(())
        }
    }
}

/// `lcow-vmm probe`: whether /dev/kvm can boot a Linux guest (the rules of [`check`] without
/// the escape hatch).
pub fn probe() -> HostProbe {
    let kind = kvm_kind();
    HostProbe {
        hypervisor: "kvm".to_owned(),
        ready: kind.boots_linux(),
        detail: kind.explain().to_owned(),
    }
}
