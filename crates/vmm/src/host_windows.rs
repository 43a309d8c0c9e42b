//! `lcow-vmm run`'s host check on Windows: the Windows Hypervisor Platform is there and on.

/// Refuses a host without a usable WHP, saying how to turn it on, before anything is loaded.
pub fn check() -> anyhow::Result<()> {
    lcow_hypervisor::whp::probe()?;
    Ok(())
}
