//! vCPUs: their initial configuration (CPUID, MSRs, FPU, local APIC, boot registers) and the
//! run loop each vCPU thread runs, which hands port I/O and MMIO exits to the buses and turns
//! the other exits into the VM's end.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use lcow_devices::Bus;
use lcow_hypervisor::x86_64::{
    self, CpuId, MsrEntry, APIC_LVT_LINT0, APIC_LVT_LINT1, APIC_MODE_EXTINT, APIC_MODE_NMI,
};
use lcow_hypervisor::{IoOperation, IoParams, SystemEvent, Vcpu, VcpuExit};

use crate::boot::cpu_state::{boot_regs, boot_sregs};
use crate::boot::KernelEntry;
use crate::cpuid::patch_cpuid;
use crate::monitor::{ExitReason, VcpuShared, VmState};

pub use crate::vcpu_error::VcpuError;

/// What every vCPU is configured with.
#[derive(Debug, Clone)]
pub struct VcpuSetup {
    /// The host's supported CPUID, patched per vCPU.
    pub cpuid: CpuId,
    /// The MSRs the host can set.
    pub supported_msrs: Vec<u32>,
    /// How many vCPUs the VM has.
    pub count: u32,
}

/// The MSRs every vCPU starts with (IA32_ARCH_CAPABILITIES is deliberately absent: hosts
/// refuse it, docs/architecture.md).
pub fn boot_msrs() -> Vec<MsrEntry> {
    let msr = |index, data| MsrEntry { index, data };
    vec![
        msr(0x174, 0),           // IA32_SYSENTER_CS
        msr(0x175, 0),           // IA32_SYSENTER_ESP
        msr(0x176, 0),           // IA32_SYSENTER_EIP
        msr(0xc000_0081, 0),     // STAR
        msr(0xc000_0082, 0),     // LSTAR
        msr(0xc000_0083, 0),     // CSTAR
        msr(0xc000_0084, 0),     // SYSCALL_MASK
        msr(0xc000_0102, 0),     // KERNEL_GS_BASE
        msr(0x10, 0),            // IA32_TSC: the same epoch on every vCPU
        msr(0x1a0, 1),           // IA32_MISC_ENABLE: fast strings
        msr(0x2ff, 1 << 11 | 6), // MTRRdefType: MTRRs on, write-back by default
    ]
}

/// Configures vCPU `id`: CPUID, MSRs, FPU, LINT0/LINT1 of its local APIC and, for the boot
/// vCPU (`boot` given), the registers of the kernel entry. The other vCPUs keep their reset
/// state: the guest starts them with INIT/SIPI, handled by the in-kernel local APIC.
pub fn configure_vcpu<V: Vcpu>(
    vcpu: &mut V,
    setup: &VcpuSetup,
    boot: Option<&KernelEntry>,
) -> Result<(), VcpuError> {
    let id = vcpu.id();
    let step = |step| {
        move |source| VcpuError::Configure {
            vcpu: id,
            step,
            source,
        }
    };
    let mut cpuid = setup.cpuid.clone();
    patch_cpuid(&mut cpuid, id, setup.count);
    vcpu.set_cpuid(&cpuid).map_err(step("set cpuid"))?;
    let report = x86_64::set_supported_msrs(vcpu, &setup.supported_msrs, &boot_msrs())
        .map_err(step("set msrs"))?;
    tracing::debug!(vcpu = id, skipped = ?report.skipped, "msrs set");
    // The FPU is left in its reset state, which is FNINIT's (FCW 0x37f, MXCSR 0x1f80) with
    // every XSAVE component in its init state, as the guest kernel expects it. (Setting those
    // same values would now mark x87 and SSE as in use, `Vcpu::set_fpu` being a real XSAVE
    // write; the guest gains nothing from it.)
    let mut lapic = vcpu.get_lapic().map_err(step("get the local apic"))?;
    lapic.set_reg(APIC_LVT_LINT0, APIC_MODE_EXTINT);
    lapic.set_reg(APIC_LVT_LINT1, APIC_MODE_NMI);
    vcpu.set_lapic(&lapic).map_err(step("set the local apic"))?;
    if let Some(entry) = boot {
        let sregs = vcpu
            .get_sregs()
            .map_err(step("get the special registers"))?;
        vcpu.set_sregs(&boot_sregs(sregs, entry))
            .map_err(step("set the special registers"))?;
        vcpu.set_regs(&boot_regs(entry))
            .map_err(step("set the general registers"))?;
    }
    Ok(())
}

/// What a vCPU thread shares with the rest of the VMM.
#[derive(Debug, Clone)]
pub struct VcpuContext {
    /// The port I/O bus.
    pub pio: Arc<Bus>,
    /// The MMIO bus.
    pub mmio: Arc<Bus>,
    /// The VM's end.
    pub state: Arc<VmState>,
    /// This vCPU's counters and halt probe.
    pub shared: Arc<VcpuShared>,
}

/// Completes a port I/O access: unknown ports read as all ones, writes to them are dropped.
pub fn dispatch_pio(bus: &Bus, vcpu: u32, params: IoParams<'_>) {
    let port = params.address;
    match params.operation {
        IoOperation::Read(data) => {
            if !bus.read(port, data) {
                tracing::trace!(vcpu, port, size = data.len(), "read of an unknown port");
                data.fill(0xff);
            }
        }
        IoOperation::Write(data) => {
            if !bus.write(port, data) {
                tracing::trace!(vcpu, port, size = data.len(), "write to an unknown port");
            }
        }
    }
}

/// Completes an MMIO access: unbacked addresses read as all ones, writes are dropped.
pub fn dispatch_mmio(bus: &Bus, vcpu: u32, params: IoParams<'_>) {
    let addr = params.address;
    match params.operation {
        IoOperation::Read(data) => {
            if !bus.read(addr, data) {
                tracing::debug!(vcpu, addr, size = data.len(), "read of unbacked mmio");
                data.fill(0xff);
            }
        }
        IoOperation::Write(data) => {
            if !bus.write(addr, data) {
                tracing::debug!(vcpu, addr, size = data.len(), "write to unbacked mmio");
            }
        }
    }
}

/// What to do after an exit.
#[derive(Debug)]
enum Next {
    Continue,
    Stop(Result<ExitReason, VcpuError>),
}

fn rip<V: Vcpu>(vcpu: &V) -> Option<u64> {
    vcpu.get_regs().ok().map(|r| r.rip)
}

fn handle_exit<V: Vcpu>(vcpu: &mut V, exit: VcpuExit, ctx: &VcpuContext) -> Next {
    let id = vcpu.id();
    let complete = |source| Next::Stop(Err(VcpuError::CompleteIo { vcpu: id, source }));
    match exit {
        VcpuExit::Io => {
            ctx.shared.io_exits.fetch_add(1, Ordering::Relaxed);
            match vcpu.handle_io(&mut |p| dispatch_pio(&ctx.pio, id, p)) {
                Ok(()) => Next::Continue,
                Err(e) => complete(e),
            }
        }
        VcpuExit::Mmio => {
            ctx.shared.io_exits.fetch_add(1, Ordering::Relaxed);
            match vcpu.handle_mmio(&mut |p| dispatch_mmio(&ctx.mmio, id, p)) {
                Ok(()) => Next::Continue,
                Err(e) => complete(e),
            }
        }
        VcpuExit::Intr => {
            ctx.shared.answer_probe(|| {
                let mp_state = vcpu.get_mp_state().ok();
                let halted = vcpu.is_halted_with_interrupts_disabled().unwrap_or(false);
                tracing::trace!(
                    target: "lcow_vmm::probe",
                    vcpu = id,
                    ?mp_state,
                    halted,
                    rip = ?rip(vcpu),
                    "halt probe"
                );
                (mp_state, halted)
            });
            Next::Continue
        }
        // Only without an in-kernel irqchip: nothing would ever wake this vCPU.
        VcpuExit::Hlt => {
            tracing::debug!(vcpu = id, "hlt exit");
            Next::Stop(Ok(ExitReason::PowerOff))
        }
        VcpuExit::Shutdown => {
            tracing::debug!(vcpu = id, "shutdown exit (triple fault)");
            Next::Stop(Ok(ExitReason::Reset))
        }
        VcpuExit::SystemEvent(SystemEvent::Shutdown) => Next::Stop(Ok(ExitReason::PowerOff)),
        VcpuExit::SystemEvent(SystemEvent::Reset) => Next::Stop(Ok(ExitReason::Reset)),
        VcpuExit::SystemEvent(SystemEvent::Crash) => {
            Next::Stop(Err(VcpuError::GuestCrashed { vcpu: id }))
        }
        VcpuExit::FailEntry { reason } => Next::Stop(Err(VcpuError::FailEntry {
            vcpu: id,
            reason,
            rip: rip(vcpu),
        })),
        VcpuExit::InternalError { suberror } => Next::Stop(Err(VcpuError::InternalError {
            vcpu: id,
            suberror,
            rip: rip(vcpu),
        })),
        other => Next::Stop(Err(VcpuError::UnexpectedExit {
            vcpu: id,
            exit: format!("{other:?}"),
            rip: rip(vcpu),
        })),
    }
}

/// The body of a vCPU thread: runs the vCPU until the VM ends (by this vCPU's exit, another
/// vCPU's, a device's reset or the halt monitor), reporting its own end to `ctx.state`.
pub fn run_vcpu<V: Vcpu>(mut vcpu: V, ctx: VcpuContext) {
    let id = vcpu.id();
    tracing::debug!(vcpu = id, "vcpu thread started");
    while !ctx.state.stopping() {
        let next = match vcpu.run() {
            Ok(exit) => handle_exit(&mut vcpu, exit, &ctx),
            Err(source) => Next::Stop(Err(VcpuError::Run { vcpu: id, source })),
        };
        if let Next::Stop(outcome) = next {
            tracing::debug!(vcpu = id, ?outcome, "vcpu ends the vm");
            ctx.state.finish(outcome);
        }
    }
    tracing::debug!(vcpu = id, "vcpu thread stopped");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use lcow_devices::BusDevice;

    use super::*;

    struct Echo;

    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8 + 1);
        }
        fn write(&mut self, _: u64, _: &[u8]) {}
    }

    #[test]
    fn test_dispatch_pio_unknown_port_reads_all_ones() {
        let mut bus = Bus::new();
        bus.insert("echo", 0x3f8, 8, Arc::new(Mutex::new(Echo)))
            .unwrap();
        let mut unknown = [0u8; 2];
        let mut known = [0u8; 1];

        dispatch_pio(
            &bus,
            0,
            IoParams {
                address: 0x80,
                operation: IoOperation::Read(&mut unknown),
            },
        );
        dispatch_pio(
            &bus,
            0,
            IoParams {
                address: 0x3f9,
                operation: IoOperation::Read(&mut known),
            },
        );

        assert_eq!(unknown, [0xff, 0xff]);
        assert_eq!(known, [2]);
    }

    #[test]
    fn test_boot_msrs_never_arch_capabilities() {
        assert!(boot_msrs()
            .iter()
            .all(|m| m.index != x86_64::MSR_IA32_ARCH_CAPABILITIES));
    }

    #[test]
    fn test_vcpu_error_messages_name_vcpu_and_reason() {
        let err = VcpuError::InternalError {
            vcpu: 1,
            suberror: 1,
            rip: Some(0xffff_ffff_8100_0000),
        };
        assert_eq!(
            err.to_string(),
            "vcpu 1: hypervisor internal error: emulation failure (an instruction the \
             hypervisor cannot emulate) at rip 0xffffffff81000000"
        );
        let err = VcpuError::FailEntry {
            vcpu: 0,
            reason: 0x21,
            rip: None,
        };
        assert_eq!(
            err.to_string(),
            "vcpu 0: the hypervisor failed to enter the guest (hardware reason 0x21)"
        );
    }
}
