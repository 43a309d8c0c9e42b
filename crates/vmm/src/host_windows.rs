//! `lcow-vmm run`'s host check on Windows: the Windows Hypervisor Platform is there and on.

/// Refuses a host without a usable WHP, saying how to turn it on, before anything is loaded.
pub fn check() -> anyhow::Result<()> {
    lcow_hypervisor::whp::probe()?;
    Ok(())
}

/// `lcow-vmm probe`: whether WHP can run a guest, and if not what to do.
pub fn probe() -> lcow_protocol::vm::HostProbe {
    let (ready, detail) = match lcow_hypervisor::whp::probe() {
        Ok(()) => (true, "the Windows Hypervisor Platform is on".to_owned()),
        Err(e) => (false, e.to_string()),
    };
    lcow_protocol::vm::HostProbe {
        hypervisor: "whp".to_owned(),
        ready,
        detail,
    }
}
