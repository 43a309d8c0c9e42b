//! The Windows Hypervisor Platform (WHP) backend, being written (docs/windows.md).
//!
//! What exists: [`probe`], which tells whether this host can run guests with WHP and, when it
//! cannot, says why and how to turn WHP on; [`Partition`], a partition set up for our guests
//! (CPUID and MSR exits, xAPIC) with its guest memory ranges; [`regs`], the register tables;
//! [`exit`], what each exit reason means for the run loop.
//! The vCPUs, their exits and interrupt delivery (with [`crate::irqchip`]) come next. The platform's DLLs are loaded at run time
//! ([`api`]), never linked, so a host without them gets that error instead of a program that
//! the Windows loader refuses to start.

mod api;
pub mod exit;
mod partition;
pub mod regs;

pub use partition::Partition;

use windows_sys::Win32::System::Hypervisor::WHvCapabilityCodeHypervisorPresent;

use crate::{Error, Result};
use api::Platform;

/// How to turn WHP on, for error messages.
pub const ENABLE_HINT: &str = "turn on the Windows feature \"Windows Hypervisor Platform\" \
     (Settings > Optional features > More Windows features, or as administrator: \
     Enable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform) and restart; \
     in a VM, the host must also expose nested virtualization";

/// Checks that this host can run guests with WHP: `WinHvPlatform.dll` loads, exports what the
/// backend calls, and reports the hypervisor present.
pub fn probe() -> Result<()> {
    let api = api::platform()?;
    let mut present = [0u8; 4];
    api.get_capability(WHvCapabilityCodeHypervisorPresent, &mut present)
        .map_err(|e| {
            Error::HypervisorUnavailable(format!(
                "WHvGetCapability failed ({}); {ENABLE_HINT}",
                std::io::Error::from(e)
            ))
        })?;
    if u32::from_le_bytes(present) == 0 {
        return Err(Error::HypervisorUnavailable(format!(
            "the Windows Hypervisor Platform is installed but the hypervisor is not running; \
             {ENABLE_HINT}"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Under Wine (no WinHvPlatform.dll) and on a Windows host without WHP the probe fails with
    /// a message that names WHP and how to turn it on; on a host with WHP it succeeds.
    #[test]
    fn test_probe_names_whp_and_the_fix_when_unavailable() {
        match probe() {
            Ok(()) => eprintln!("this host has the Windows Hypervisor Platform"),
            Err(Error::HypervisorUnavailable(message)) => {
                assert!(message.contains("Windows Hypervisor Platform"), "{message}");
                assert!(message.contains("HypervisorPlatform"), "{message}");
            }
            Err(other) => panic!("probe failed another way: {other}"),
        }
    }

    /// Wine has no WHP: the probe must say so (run by make test-windows).
    #[test]
    fn test_probe_under_wine_is_unavailable() {
        if !api::running_under_wine() {
            eprintln!("SKIP: not under Wine");
            return;
        }
        let err = probe().unwrap_err();
        let message = err.to_string();
        eprintln!("under Wine: {message}");
        assert!(message.contains("WinHvPlatform.dll"), "{message}");
    }
}
