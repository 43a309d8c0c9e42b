//! [`WhpVcpu`]: the [`Vcpu`] trait on a WHP virtual processor, and its [`WhpKick`].
//!
//! `run()` loops on `WHvRunVirtualProcessor` and answers the exits that are the backend's own
//! ([`super::exit::classify`]): CPUID from the vCPU's table, MSRs ([`super::msr`]), the EOI of
//! a level-triggered vector, and the userspace I/O APIC's MMIO and PIC's ports
//! ([`super::irq`]). Port I/O and MMIO for the VMM return as [`VcpuExit::Io`] /
//! [`VcpuExit::Mmio`] and are completed in `handle_io`/`handle_mmio`: a plain `in`/`out` from
//! the exit's own record (its RAX and instruction length), everything else through
//! WinHvEmulation's instruction emulator, whose callbacks call the VMM's.
//!
//! A kick sets a pending flag, then cancels the run (`WHvCancelRunVirtualProcessor`); `run()`
//! checks the flag before it enters the guest, so a kick between two runs is not lost.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use windows_sys::Win32::System::Hypervisor::{
    WHvRegisterInternalActivityState, WHvX64RegisterRax, WHvX64RegisterRbx, WHvX64RegisterRcx,
    WHvX64RegisterRdx, WHvX64RegisterRip, WHV_EMULATOR_IO_ACCESS_INFO,
    WHV_EMULATOR_MEMORY_ACCESS_INFO, WHV_PARTITION_HANDLE, WHV_REGISTER_NAME, WHV_REGISTER_VALUE,
    WHV_RUN_VP_EXIT_CONTEXT, WHV_TRANSLATE_GVA_FLAGS, WHV_TRANSLATE_GVA_RESULT_CODE,
};

use super::api::{EmulatorCallbacks, EmulatorHandle, HResult, HResultError, Platform, E_FAIL};
use super::cpuid::answer;
use super::exit::{
    classify, describe_emulator_status, emulation_succeeded, instruction_length, merge_in,
    msr_is_write, ExitAction, IoAccess,
};
use super::irq::Interrupts;
use super::msr::{exit_read, exit_write, register_of};
use super::regs::{
    fpu_from_whp, fpu_to_whp, regs_from_whp, regs_to_whp, sregs_from_whp, sregs_to_whp, FPU_NAMES,
    REGS_NAMES, SREGS_NAMES,
};
use super::vm::VmInner;
use crate::x86_64::{CpuId, Fpu, LapicState, MsrEntry, Regs, Sregs};
use crate::{Error, IoOperation, IoParams, MpState, Result, Vcpu, VcpuExit, VcpuKick};

/// The size of the local APIC state WHP reads and writes (the xAPIC register page).
const LAPIC_PAGE: usize = 4096;

/// `WHV_INTERNAL_ACTIVITY_REGISTER` bits: waiting for a startup IPI (0), halted (1).
const ACTIVITY_STARTUP_SUSPEND: u64 = 1 << 0;
const ACTIVITY_HALT_SUSPEND: u64 = 1 << 1;

/// `WHV_EMULATOR_*_ACCESS_INFO::Direction` of a write.
const DIRECTION_WRITE: u8 = 1;

fn reg64(v: u64) -> WHV_REGISTER_VALUE {
    WHV_REGISTER_VALUE { Reg64: v }
}

/// The I/O exit the VMM has yet to complete.
#[derive(Clone, Copy)]
enum Pending {
    Io(WHV_RUN_VP_EXIT_CONTEXT),
    Mmio(WHV_RUN_VP_EXIT_CONTEXT),
}

/// A handle that makes a [`WhpVcpu`]'s `run()` return [`VcpuExit::Intr`] (see the module
/// documentation).
pub struct WhpKick {
    vm: Weak<VmInner>,
    vp: u32,
    pending: AtomicBool,
}

impl std::fmt::Debug for WhpKick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhpKick")
            .field("vp", &self.vp)
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl VcpuKick for WhpKick {
    fn kick(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let Some(vm) = self.vm.upgrade() else {
            return;
        };
        if let Err(e) = vm
            .api()
            .cancel_run_virtual_processor(vm.partition.handle(), self.vp)
        {
            // Cancelling a vCPU that is not running may fail; the flag stands either way.
            tracing::trace!(vp = self.vp, error = %io::Error::from(e), "cancel run");
        }
    }
}

/// One virtual processor of a [`super::WhpVm`].
pub struct WhpVcpu {
    vm: Arc<VmInner>,
    id: u32,
    emulator: EmulatorHandle,
    kick: Arc<WhpKick>,
    cpuid: CpuId,
    pending: Option<Pending>,
}

impl std::fmt::Debug for WhpVcpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhpVcpu").field("id", &self.id).finish()
    }
}

/// The calls that complete one exit, for vCPU `vp` of `partition`.
struct Vp<'a> {
    api: &'a dyn Platform,
    partition: WHV_PARTITION_HANDLE,
    vp: u32,
    emulator: EmulatorHandle,
}

/// The emulator's callbacks for one instruction: memory and ports go to `handle`.
struct Emulation<'a, 'h> {
    vp: &'a Vp<'a>,
    handle: &'h mut dyn FnMut(IoParams<'_>),
}

impl EmulatorCallbacks for Emulation<'_, '_> {
    fn io_port(&mut self, access: &mut WHV_EMULATOR_IO_ACCESS_INFO) -> HResult<()> {
        let size = usize::from(access.AccessSize);
        if !matches!(size, 1 | 2 | 4) {
            return Err(HResultError(E_FAIL));
        }
        let address = u64::from(access.Port);
        if access.Direction == DIRECTION_WRITE {
            let bytes = access.Data.to_le_bytes();
            (self.handle)(IoParams {
                address,
                operation: IoOperation::Write(&bytes[..size]),
            });
        } else {
            let mut bytes = [0u8; 4];
            (self.handle)(IoParams {
                address,
                operation: IoOperation::Read(&mut bytes[..size]),
            });
            access.Data = u32::from_le_bytes(bytes);
        }
        Ok(())
    }

    fn memory(&mut self, access: &mut WHV_EMULATOR_MEMORY_ACCESS_INFO) -> HResult<()> {
        let size = usize::from(access.AccessSize);
        if !(1..=8).contains(&size) {
            return Err(HResultError(E_FAIL));
        }
        let address = access.GpaAddress;
        if access.Direction == DIRECTION_WRITE {
            let bytes = access.Data;
            (self.handle)(IoParams {
                address,
                operation: IoOperation::Write(&bytes[..size]),
            });
        } else {
            let mut bytes = [0u8; 8];
            (self.handle)(IoParams {
                address,
                operation: IoOperation::Read(&mut bytes[..size]),
            });
            access.Data = bytes;
        }
        Ok(())
    }

    fn get_registers(
        &mut self,
        names: &[WHV_REGISTER_NAME],
        values: &mut [WHV_REGISTER_VALUE],
    ) -> HResult<()> {
        self.vp
            .api
            .get_registers(self.vp.partition, self.vp.vp, names, values)
    }

    fn set_registers(
        &mut self,
        names: &[WHV_REGISTER_NAME],
        values: &[WHV_REGISTER_VALUE],
    ) -> HResult<()> {
        self.vp
            .api
            .set_registers(self.vp.partition, self.vp.vp, names, values)
    }

    fn translate_gva_page(
        &mut self,
        gva: u64,
        flags: WHV_TRANSLATE_GVA_FLAGS,
    ) -> HResult<(WHV_TRANSLATE_GVA_RESULT_CODE, u64)> {
        self.vp
            .api
            .translate_gva(self.vp.partition, self.vp.vp, gva, flags)
    }
}

fn run_error(e: HResultError) -> Error {
    Error::Run(e.into())
}

fn emulation_error(what: &str, address: u64, status: u32) -> Error {
    Error::Run(io::Error::other(format!(
        "the instruction emulator could not complete the {what} at {address:#x}: status {}",
        describe_emulator_status(status)
    )))
}

impl Vp<'_> {
    fn set(&self, names: &[WHV_REGISTER_NAME], values: &[WHV_REGISTER_VALUE]) -> Result<()> {
        self.api
            .set_registers(self.partition, self.vp, names, values)
            .map_err(run_error)
    }

    /// The RIP after the instruction that exited.
    fn next_rip(exit: &WHV_RUN_VP_EXIT_CONTEXT) -> u64 {
        exit.VpContext
            .Rip
            .wrapping_add(instruction_length(&exit.VpContext))
    }

    /// Completes a port I/O exit with `handle` answering the accesses.
    fn complete_io(
        &self,
        exit: &WHV_RUN_VP_EXIT_CONTEXT,
        handle: &mut dyn FnMut(IoParams<'_>),
    ) -> Result<()> {
        // SAFETY: the exit reason is a port access (the caller checked), so this member of the
        // union is the one WHP wrote; it is plain integers.
        let io = unsafe { exit.Anonymous.IoPortAccess };
        let access = IoAccess::decode(&io).ok_or_else(|| {
            Error::Run(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "port i/o exit with an invalid access size (port {:#x})",
                    io.PortNumber
                ),
            ))
        })?;
        if !access.string {
            let address = u64::from(access.port);
            let size = access.size;
            let mut data = [0u8; 4];
            let rip = Self::next_rip(exit);
            if access.write {
                data[..size].copy_from_slice(&io.Rax.to_le_bytes()[..size]);
                handle(IoParams {
                    address,
                    operation: IoOperation::Write(&data[..size]),
                });
                return self.set(&[WHvX64RegisterRip], &[reg64(rip)]);
            }
            handle(IoParams {
                address,
                operation: IoOperation::Read(&mut data[..size]),
            });
            let rax = merge_in(io.Rax, &data, size);
            return self.set(
                &[WHvX64RegisterRax, WHvX64RegisterRip],
                &[reg64(rax), reg64(rip)],
            );
        }
        let mut callbacks = Emulation { vp: self, handle };
        let status = self
            .api
            .try_io_emulation(self.emulator, &mut callbacks, &exit.VpContext, &io)
            .map_err(run_error)?;
        if !emulation_succeeded(status) {
            return Err(emulation_error("port i/o", u64::from(access.port), status));
        }
        Ok(())
    }

    /// Completes an MMIO exit through the emulator, with `handle` answering the accesses.
    fn complete_mmio(
        &self,
        exit: &WHV_RUN_VP_EXIT_CONTEXT,
        handle: &mut dyn FnMut(IoParams<'_>),
    ) -> Result<()> {
        // SAFETY: the exit reason is a memory access (the caller checked); plain integers.
        let mmio = unsafe { exit.Anonymous.MemoryAccess };
        let mut callbacks = Emulation { vp: self, handle };
        let status = self
            .api
            .try_mmio_emulation(self.emulator, &mut callbacks, &exit.VpContext, &mmio)
            .map_err(run_error)?;
        if !emulation_succeeded(status) {
            return Err(emulation_error("mmio", mmio.Gpa, status));
        }
        Ok(())
    }

    /// Answers a CPUID exit from `table`.
    fn answer_cpuid(&self, exit: &WHV_RUN_VP_EXIT_CONTEXT, table: &CpuId) -> Result<()> {
        // SAFETY: the exit reason is CPUID (classify); plain integers.
        let c = unsafe { exit.Anonymous.CpuidAccess };
        let default = [
            c.DefaultResultRax as u32,
            c.DefaultResultRbx as u32,
            c.DefaultResultRcx as u32,
            c.DefaultResultRdx as u32,
        ];
        let r = answer(table, c.Rax as u32, c.Rcx as u32, default);
        self.set(
            &[
                WHvX64RegisterRax,
                WHvX64RegisterRbx,
                WHvX64RegisterRcx,
                WHvX64RegisterRdx,
                WHvX64RegisterRip,
            ],
            &[
                reg64(u64::from(r[0])),
                reg64(u64::from(r[1])),
                reg64(u64::from(r[2])),
                reg64(u64::from(r[3])),
                reg64(Self::next_rip(exit)),
            ],
        )
    }

    /// Answers an MSR exit ([`super::msr`]).
    fn answer_msr(&self, exit: &WHV_RUN_VP_EXIT_CONTEXT, vm: &VmInner) -> Result<()> {
        // SAFETY: the exit reason is an MSR access (classify); plain integers.
        let m = unsafe { exit.Anonymous.MsrAccess };
        let rip = reg64(Self::next_rip(exit));
        if msr_is_write(&m) {
            exit_write(m.MsrNumber, self.vp, (m.Rdx << 32) | (m.Rax & 0xffff_ffff));
            return self.set(&[WHvX64RegisterRip], &[rip]);
        }
        let value = exit_read(m.MsrNumber, self.vp, &vm.frequencies);
        self.set(
            &[WHvX64RegisterRax, WHvX64RegisterRdx, WHvX64RegisterRip],
            &[reg64(value & 0xffff_ffff), reg64(value >> 32), rip],
        )
    }
}

/// The PIC stub's side of a port access.
fn pic_access(interrupts: &Interrupts, params: IoParams<'_>) {
    let port = params.address as u16;
    match params.operation {
        IoOperation::Write(data) => {
            if let Some(value) = data.first() {
                interrupts.pic_write(port, *value);
            }
        }
        IoOperation::Read(data) => {
            data.fill(0);
            if let Some(first) = data.first_mut() {
                *first = interrupts.pic_read(port);
            }
        }
    }
}

/// The I/O APIC's side of an MMIO access.
fn ioapic_access(interrupts: &Interrupts, params: IoParams<'_>) {
    match params.operation {
        IoOperation::Write(data) => {
            if let Err(e) = interrupts.ioapic_write(params.address, data) {
                tracing::warn!(error = %io::Error::from(e), "i/o apic delivery failed");
            }
        }
        IoOperation::Read(data) => interrupts.ioapic_read(params.address, data),
    }
}

impl WhpVcpu {
    pub(crate) fn new(vm: Arc<VmInner>, id: u32) -> Result<Self> {
        let handle = vm.partition.handle();
        let failed = |e: HResultError| Error::CreateVcpu {
            id,
            source: e.into(),
        };
        vm.api()
            .create_virtual_processor(handle, id)
            .map_err(failed)?;
        let emulator = match vm.api().create_emulator() {
            Ok(emulator) => emulator,
            Err(e) => {
                if let Err(e) = vm.api().delete_virtual_processor(handle, id) {
                    tracing::warn!(id, error = %io::Error::from(e), "WHvDeleteVirtualProcessor");
                }
                return Err(failed(e));
            }
        };
        let kick = Arc::new(WhpKick {
            vm: Arc::downgrade(&vm),
            vp: id,
            pending: AtomicBool::new(false),
        });
        Ok(Self {
            vm,
            id,
            emulator,
            kick,
            cpuid: CpuId::default(),
            pending: None,
        })
    }

    fn vp(&self) -> Vp<'_> {
        Vp {
            api: self.vm.api().as_ref(),
            partition: self.vm.partition.handle(),
            vp: self.id,
            emulator: self.emulator,
        }
    }

    fn get<const N: usize>(
        &self,
        names: &[WHV_REGISTER_NAME; N],
    ) -> HResult<[WHV_REGISTER_VALUE; N]> {
        let mut values = [reg64(0); N];
        self.vm
            .api()
            .get_registers(self.vm.partition.handle(), self.id, names, &mut values)?;
        Ok(values)
    }

    fn set(&self, names: &[WHV_REGISTER_NAME], values: &[WHV_REGISTER_VALUE]) -> HResult<()> {
        self.vm
            .api()
            .set_registers(self.vm.partition.handle(), self.id, names, values)
    }
}

impl Drop for WhpVcpu {
    fn drop(&mut self) {
        let api = self.vm.api();
        if let Err(e) = api.destroy_emulator(self.emulator) {
            tracing::warn!(id = self.id, error = %io::Error::from(e), "WHvEmulatorDestroyEmulator");
        }
        if let Err(e) = api.delete_virtual_processor(self.vm.partition.handle(), self.id) {
            tracing::warn!(id = self.id, error = %io::Error::from(e), "WHvDeleteVirtualProcessor");
        }
    }
}

impl Vcpu for WhpVcpu {
    fn id(&self) -> u32 {
        self.id
    }

    fn run(&mut self) -> Result<VcpuExit> {
        self.pending = None;
        let interrupts = self.vm.interrupts.clone();
        loop {
            if self.kick.pending.swap(false, Ordering::SeqCst) {
                return Ok(VcpuExit::Intr);
            }
            let exit = self
                .vm
                .api()
                .run_virtual_processor(self.vm.partition.handle(), self.id)
                .map_err(run_error)?;
            let vp = self.vp();
            match classify(exit.ExitReason) {
                ExitAction::Vmm(VcpuExit::Intr) => {
                    self.kick.pending.store(false, Ordering::SeqCst);
                    return Ok(VcpuExit::Intr);
                }
                ExitAction::Vmm(VcpuExit::Io) => {
                    // SAFETY: a port access exit: this union member is the one WHP wrote.
                    let port = unsafe { exit.Anonymous.IoPortAccess.PortNumber };
                    if Interrupts::is_pic(port) {
                        vp.complete_io(&exit, &mut |p| pic_access(&interrupts, p))?;
                        continue;
                    }
                    self.pending = Some(Pending::Io(exit));
                    return Ok(VcpuExit::Io);
                }
                ExitAction::Vmm(VcpuExit::Mmio) => {
                    // SAFETY: a memory access exit: this union member is the one WHP wrote.
                    let gpa = unsafe { exit.Anonymous.MemoryAccess.Gpa };
                    if Interrupts::is_ioapic(gpa) {
                        vp.complete_mmio(&exit, &mut |p| ioapic_access(&interrupts, p))?;
                        continue;
                    }
                    self.pending = Some(Pending::Mmio(exit));
                    return Ok(VcpuExit::Mmio);
                }
                ExitAction::Vmm(other) => return Ok(other),
                ExitAction::Cpuid => vp.answer_cpuid(&exit, &self.cpuid)?,
                ExitAction::MsrAccess => vp.answer_msr(&exit, &self.vm)?,
                ExitAction::ApicEoi => {
                    // SAFETY: an EOI exit: this union member is the one WHP wrote.
                    let vector = unsafe { exit.Anonymous.ApicEoi.InterruptVector };
                    if let Err(e) = interrupts.end_of_interrupt(vector as u8) {
                        tracing::warn!(vector, error = %io::Error::from(e), "eoi re-delivery");
                    }
                }
                ExitAction::InterruptWindow | ExitAction::Resume => {}
            }
        }
    }

    fn handle_io(&mut self, handle: &mut dyn FnMut(IoParams<'_>)) -> Result<()> {
        let Some(Pending::Io(exit)) = self.pending else {
            return Err(Error::NoPendingIo);
        };
        self.pending = None;
        self.vp().complete_io(&exit, handle)
    }

    fn handle_mmio(&mut self, handle: &mut dyn FnMut(IoParams<'_>)) -> Result<()> {
        let Some(Pending::Mmio(exit)) = self.pending else {
            return Err(Error::NoPendingMmio);
        };
        self.pending = None;
        self.vp().complete_mmio(&exit, handle)
    }

    fn kicker(&self) -> Arc<dyn VcpuKick> {
        self.kick.clone()
    }

    fn get_mp_state(&self) -> Result<MpState> {
        let [activity] = self
            .get(&[WHvRegisterInternalActivityState])
            .map_err(|e| Error::GetMpState(e.into()))?;
        // SAFETY: the internal activity register is a 64-bit bit field.
        let bits = unsafe { activity.Reg64 };
        Ok(if bits & ACTIVITY_STARTUP_SUSPEND != 0 {
            MpState::Uninitialized
        } else if bits & ACTIVITY_HALT_SUSPEND != 0 {
            MpState::Halted
        } else {
            MpState::Runnable
        })
    }

    fn get_regs(&self) -> Result<Regs> {
        let values = self
            .get(&REGS_NAMES)
            .map_err(|e| Error::GetRegs(e.into()))?;
        Ok(regs_from_whp(&values))
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<()> {
        self.set(&REGS_NAMES, &regs_to_whp(regs))
            .map_err(|e| Error::SetRegs(e.into()))
    }

    fn get_sregs(&self) -> Result<Sregs> {
        let values = self
            .get(&SREGS_NAMES)
            .map_err(|e| Error::GetSregs(e.into()))?;
        Ok(sregs_from_whp(&values))
    }

    fn set_sregs(&mut self, sregs: &Sregs) -> Result<()> {
        self.set(&SREGS_NAMES, &sregs_to_whp(sregs))
            .map_err(|e| Error::SetSregs(e.into()))
    }

    fn get_fpu(&self) -> Result<Fpu> {
        let values = self.get(&FPU_NAMES).map_err(|e| Error::GetFpu(e.into()))?;
        Ok(fpu_from_whp(&values))
    }

    fn set_fpu(&mut self, fpu: &Fpu) -> Result<()> {
        self.set(&FPU_NAMES, &fpu_to_whp(fpu))
            .map_err(|e| Error::SetFpu(e.into()))
    }

    fn get_msrs(&self, indices: &[u32]) -> Result<Vec<MsrEntry>> {
        let names = indices
            .iter()
            .map(|&index| register_of(index).ok_or(Error::MsrNotReadable { index }))
            .collect::<Result<Vec<_>>>()?;
        let mut values = vec![reg64(0); names.len()];
        self.vm
            .api()
            .get_registers(self.vm.partition.handle(), self.id, &names, &mut values)
            .map_err(|e| Error::GetMsrs(e.into()))?;
        Ok(indices
            .iter()
            .zip(&values)
            .map(|(&index, value)| MsrEntry {
                index,
                // SAFETY: every MSR register is 64 bits wide.
                data: unsafe { value.Reg64 },
            })
            .collect())
    }

    fn set_msrs(&mut self, msrs: &[MsrEntry]) -> Result<()> {
        let known = msrs
            .iter()
            .position(|m| register_of(m.index).is_none())
            .unwrap_or(msrs.len());
        let names: Vec<WHV_REGISTER_NAME> = msrs[..known]
            .iter()
            .filter_map(|m| register_of(m.index))
            .collect();
        let values: Vec<WHV_REGISTER_VALUE> = msrs[..known].iter().map(|m| reg64(m.data)).collect();
        if !names.is_empty() {
            self.set(&names, &values)
                .map_err(|e| Error::SetMsrs(e.into()))?;
        }
        match msrs.get(known) {
            Some(refused) => Err(Error::MsrNotAccepted {
                index: refused.index,
                applied: known,
            }),
            None => Ok(()),
        }
    }

    fn set_cpuid(&mut self, cpuid: &CpuId) -> Result<()> {
        self.cpuid = cpuid.clone();
        Ok(())
    }

    fn get_lapic(&self) -> Result<LapicState> {
        let mut page = vec![0u8; LAPIC_PAGE];
        self.vm
            .api()
            .get_lapic_state(self.vm.partition.handle(), self.id, &mut page)
            .map_err(|e| Error::GetLapic(e.into()))?;
        let mut lapic = LapicState::default();
        let len = lapic.regs.len();
        lapic.regs.copy_from_slice(&page[..len]);
        Ok(lapic)
    }

    fn set_lapic(&mut self, lapic: &LapicState) -> Result<()> {
        let mut page = vec![0u8; LAPIC_PAGE];
        let handle = self.vm.partition.handle();
        self.vm
            .api()
            .get_lapic_state(handle, self.id, &mut page)
            .map_err(|e| Error::SetLapic(e.into()))?;
        page[..lapic.regs.len()].copy_from_slice(&lapic.regs);
        self.vm
            .api()
            .set_lapic_state(handle, self.id, &page)
            .map_err(|e| Error::SetLapic(e.into()))
    }
}
