//! The Windows Hypervisor Platform (WHP) backend (docs/windows.md): [`WhpHypervisor`],
//! [`WhpVm`] and [`WhpVcpu`] implement the crate's traits on a WHP partition.
//!
//! - [`probe`] tells whether this host can run guests with WHP and, when it cannot, says why
//!   and how to turn WHP on.
//! - [`Partition`]: a partition set up for our guests (CPUID and MSR exits, xAPIC) with its
//!   guest memory ranges.
//! - [`vcpu`]: the run loop, the exits the backend answers itself ([`exit`], [`cpuid`],
//!   [`msr`]), port I/O and MMIO through WinHvEmulation's instruction emulator, registers
//!   ([`regs`]), the local APIC page, and the kick.
//! - [`irq`]: the userspace I/O APIC and PIC stub ([`crate::irqchip`]) delivering with
//!   `WHvRequestInterrupt`; irq events served by a thread; io events as WHP doorbells.
//!
//! The platform's DLLs are loaded at run time (`api`, `loaded`), never linked, so a host
//! without them gets [`probe`]'s error instead of a program the Windows loader refuses to
//! start. Every call goes through one function table, which the tests replace with a fake
//! (`fake`), so the logic runs under Wine, which has no WHP. What only a Windows host with
//! WHP can confirm is listed in docs/windows.md.

mod api;
#[cfg(test)]
mod backend_tests;
pub mod cpuid;
pub mod exit;
#[cfg(test)]
mod fake;
pub mod irq;
mod irq_events;
mod loaded;
pub mod msr;
mod partition;
pub mod regs;
pub mod vcpu;
mod vm;

pub use partition::Partition;
pub use vcpu::{WhpKick, WhpVcpu};
pub use vm::{WhpHypervisor, WhpVm, MAX_MEMORY_SLOTS, MAX_VCPUS};

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
