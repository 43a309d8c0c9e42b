//! [`KvmVcpu`]: a KVM virtual CPU.

use std::sync::Arc;

use kvm_bindings::{
    kvm_run, CpuId as KvmCpuId, Msrs, KVM_EXIT_IO_IN, KVM_MP_STATE_HALTED,
    KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_SIPI_RECEIVED,
    KVM_MP_STATE_UNINITIALIZED, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};

use super::kick::KickState;
use super::regs;
use crate::x86_64::{CpuId, Fpu, LapicState, MsrEntry, Regs, Sregs};
use crate::{Error, IoOperation, IoParams, MpState, Result, SystemEvent, Vcpu, VcpuExit, VcpuKick};

/// The exit `handle_io` / `handle_mmio` may complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Io,
    Mmio,
}

/// A KVM virtual CPU, created by [`crate::Vm::create_vcpu`] on a [`super::KvmVm`].
#[derive(Debug)]
pub struct KvmVcpu {
    id: u32,
    fd: VcpuFd,
    /// Size of the `kvm_run` mapping, which bounds port I/O data.
    run_size: usize,
    pending: Pending,
    kick: Arc<KickState>,
    /// The FPU is read and written through `KVM_GET_XSAVE`/`KVM_SET_XSAVE` (see
    /// [`regs::fpu_into_xsave`] for why the legacy FPU ioctls are not enough).
    xsave: bool,
}

impl KvmVcpu {
    /// `xsave`: the VM has `KVM_CAP_XSAVE` and its XSAVE area fits the 4096-byte `kvm_xsave`.
    pub(super) fn new(id: u32, fd: VcpuFd, run_size: usize, xsave: bool) -> Self {
        Self {
            id,
            fd,
            run_size,
            pending: Pending::None,
            kick: Arc::default(),
            xsave,
        }
    }

    /// Maps a kvm-ioctls exit; `None` for the ones this crate reports as [`VcpuExit::Unknown`].
    fn map_exit(exit: &KvmExit<'_>) -> Option<(VcpuExit, Pending)> {
        let exit = match exit {
            KvmExit::IoIn(..) | KvmExit::IoOut(..) => return Some((VcpuExit::Io, Pending::Io)),
            KvmExit::MmioRead(..) | KvmExit::MmioWrite(..) => {
                return Some((VcpuExit::Mmio, Pending::Mmio))
            }
            KvmExit::Hlt => VcpuExit::Hlt,
            KvmExit::Shutdown => VcpuExit::Shutdown,
            KvmExit::SystemEvent(kind, _) => VcpuExit::SystemEvent(match *kind {
                KVM_SYSTEM_EVENT_SHUTDOWN => SystemEvent::Shutdown,
                KVM_SYSTEM_EVENT_RESET => SystemEvent::Reset,
                KVM_SYSTEM_EVENT_CRASH => SystemEvent::Crash,
                other => SystemEvent::Other(other),
            }),
            KvmExit::Intr => VcpuExit::Intr,
            KvmExit::FailEntry(reason, _) => VcpuExit::FailEntry { reason: *reason },
            // The sub-error is read from `kvm_run` by the caller.
            KvmExit::InternalError => VcpuExit::InternalError { suberror: 0 },
            KvmExit::Exception => VcpuExit::Exception,
            KvmExit::Debug(_) => VcpuExit::Debug,
            KvmExit::IrqWindowOpen => VcpuExit::IrqWindowOpen,
            _ => return None,
        };
        Some((exit, Pending::None))
    }

    /// Runs `KVM_RUN` once; the kick bookkeeping is the caller's.
    fn run_once(&mut self) -> Result<VcpuExit> {
        let mapped = match self.fd.run() {
            Ok(exit) => Self::map_exit(&exit),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                Some((VcpuExit::Intr, Pending::None))
            }
            Err(e) => return Err(Error::Run(e.into())),
        };
        let run = self.fd.get_kvm_run();
        let exit = match mapped {
            Some((VcpuExit::InternalError { .. }, _)) => {
                // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so the kernel filled the
                // `internal` member of the union.
                let suberror = unsafe { run.__bindgen_anon_1.internal.suberror };
                VcpuExit::InternalError { suberror }
            }
            Some((exit, pending)) => {
                self.pending = pending;
                exit
            }
            None => VcpuExit::Unknown {
                reason: run.exit_reason,
            },
        };
        Ok(exit)
    }
}

impl Vcpu for KvmVcpu {
    fn id(&self) -> u32 {
        self.id
    }

    fn run(&mut self) -> Result<VcpuExit> {
        self.pending = Pending::None;
        let run: *mut kvm_run = self.fd.get_kvm_run();
        let kick = Arc::clone(&self.kick);
        let _running = kick.enter(run);
        // A kick from before `enter` left the request set; one from after it signals us, and
        // the handler sets `immediate_exit`, so KVM_RUN returns EINTR without entering the guest.
        if kick.take_request() {
            self.fd.set_kvm_immediate_exit(0);
            return Ok(VcpuExit::Intr);
        }
        let exit = self.run_once();
        if matches!(exit, Ok(VcpuExit::Intr)) {
            kick.take_request();
        }
        // A kick that raced with another exit keeps its request set for the next `run()`.
        self.fd.set_kvm_immediate_exit(0);
        if let Ok(exit @ (VcpuExit::FailEntry { .. } | VcpuExit::InternalError { .. })) = &exit {
            tracing::debug!(vcpu = self.id, ?exit, "vcpu stopped on a hypervisor error");
        }
        exit
    }

    fn handle_io(&mut self, handle: &mut dyn FnMut(IoParams<'_>)) -> Result<()> {
        if self.pending != Pending::Io {
            return Err(Error::NoPendingIo);
        }
        self.pending = Pending::None;
        let run_size = self.run_size;
        let run = self.fd.get_kvm_run();
        // SAFETY: the last KVM_RUN exited with KVM_EXIT_IO (`pending`), so the kernel filled the
        // `io` member of the union.
        let io = unsafe { run.__bindgen_anon_1.io };
        let size = usize::from(io.size);
        let offset = io.data_offset as usize;
        let len = size.saturating_mul(io.count as usize);
        if size == 0 || offset.checked_add(len).is_none_or(|end| end > run_size) {
            return Err(Error::MalformedIoExit { offset, len });
        }
        // SAFETY: `offset .. offset + len` lies inside the `kvm_run` mapping of `run_size` bytes
        // (checked above), which lives as long as `self.fd`, and nothing else refers to it while
        // `self` is borrowed mutably.
        let data = unsafe {
            std::slice::from_raw_parts_mut(std::ptr::from_mut(run).cast::<u8>().add(offset), len)
        };
        let address = u64::from(io.port);
        let input = u32::from(io.direction) == KVM_EXIT_IO_IN;
        for chunk in data.chunks_mut(size) {
            let operation = if input {
                IoOperation::Read(chunk)
            } else {
                IoOperation::Write(chunk)
            };
            handle(IoParams { address, operation });
        }
        Ok(())
    }

    fn handle_mmio(&mut self, handle: &mut dyn FnMut(IoParams<'_>)) -> Result<()> {
        if self.pending != Pending::Mmio {
            return Err(Error::NoPendingMmio);
        }
        self.pending = Pending::None;
        let run = self.fd.get_kvm_run();
        // SAFETY: the last KVM_RUN exited with KVM_EXIT_MMIO (`pending`), so the kernel filled
        // the `mmio` member of the union.
        let mmio = unsafe { &mut run.__bindgen_anon_1.mmio };
        let len = (mmio.len as usize).min(mmio.data.len());
        let address = mmio.phys_addr;
        let operation = if mmio.is_write != 0 {
            IoOperation::Write(&mmio.data[..len])
        } else {
            IoOperation::Read(&mut mmio.data[..len])
        };
        handle(IoParams { address, operation });
        Ok(())
    }

    fn kicker(&self) -> Arc<dyn VcpuKick> {
        self.kick.clone()
    }

    fn get_mp_state(&self) -> Result<MpState> {
        let state = self
            .fd
            .get_mp_state()
            .map_err(|e| Error::GetMpState(e.into()))?;
        Ok(match state.mp_state {
            KVM_MP_STATE_RUNNABLE => MpState::Runnable,
            KVM_MP_STATE_UNINITIALIZED => MpState::Uninitialized,
            KVM_MP_STATE_INIT_RECEIVED => MpState::InitReceived,
            KVM_MP_STATE_HALTED => MpState::Halted,
            KVM_MP_STATE_SIPI_RECEIVED => MpState::SipiReceived,
            other => MpState::Other(other),
        })
    }

    fn get_regs(&self) -> Result<Regs> {
        let regs = self.fd.get_regs().map_err(|e| Error::GetRegs(e.into()))?;
        Ok(regs::regs_from_kvm(&regs))
    }

    fn set_regs(&mut self, regs: &Regs) -> Result<()> {
        self.fd
            .set_regs(&regs::regs_to_kvm(regs))
            .map_err(|e| Error::SetRegs(e.into()))
    }

    fn get_sregs(&self) -> Result<Sregs> {
        let sregs = self.fd.get_sregs().map_err(|e| Error::GetSregs(e.into()))?;
        Ok(regs::sregs_from_kvm(&sregs))
    }

    fn set_sregs(&mut self, sregs: &Sregs) -> Result<()> {
        // Read first so the KVM-only pending-interrupt bitmap is kept.
        let mut kvm = self.fd.get_sregs().map_err(|e| Error::SetSregs(e.into()))?;
        regs::sregs_into_kvm(sregs, &mut kvm);
        self.fd
            .set_sregs(&kvm)
            .map_err(|e| Error::SetSregs(e.into()))
    }

    fn get_fpu(&self) -> Result<Fpu> {
        if self.xsave {
            let xsave = self.fd.get_xsave().map_err(|e| Error::GetFpu(e.into()))?;
            return Ok(regs::fpu_from_xsave(&xsave));
        }
        let fpu = self.fd.get_fpu().map_err(|e| Error::GetFpu(e.into()))?;
        Ok(regs::fpu_from_kvm(&fpu))
    }

    fn set_fpu(&mut self, fpu: &Fpu) -> Result<()> {
        if self.xsave {
            let mut xsave = self.fd.get_xsave().map_err(|e| Error::SetFpu(e.into()))?;
            regs::fpu_into_xsave(fpu, &mut xsave);
            // SAFETY: `self.xsave` is only set when the VM's XSAVE area fits the 4096 bytes of
            // `kvm_xsave` (KVM_CAP_XSAVE2 reports at most that, and this process enables no
            // dynamic XSTATE features), so KVM reads nothing past the struct.
            return unsafe { self.fd.set_xsave(&xsave) }.map_err(|e| Error::SetFpu(e.into()));
        }
        self.fd
            .set_fpu(&regs::fpu_to_kvm(fpu))
            .map_err(|e| Error::SetFpu(e.into()))
    }

    fn get_msrs(&self, indices: &[u32]) -> Result<Vec<MsrEntry>> {
        let entries: Vec<_> = indices
            .iter()
            .map(|&index| regs::msr_to_kvm(&MsrEntry { index, data: 0 }))
            .collect();
        let mut msrs = Msrs::from_entries(&entries).map_err(|_| Error::TooManyEntries {
            what: "msr",
            count: entries.len(),
        })?;
        let read = self
            .fd
            .get_msrs(&mut msrs)
            .map_err(|e| Error::GetMsrs(e.into()))?;
        if let Some(&index) = indices.get(read) {
            return Err(Error::MsrNotReadable { index });
        }
        Ok(msrs
            .as_slice()
            .iter()
            .map(|m| MsrEntry {
                index: m.index,
                data: m.data,
            })
            .collect())
    }

    fn set_msrs(&mut self, msrs: &[MsrEntry]) -> Result<()> {
        let entries: Vec<_> = msrs.iter().map(regs::msr_to_kvm).collect();
        let kvm = Msrs::from_entries(&entries).map_err(|_| Error::TooManyEntries {
            what: "msr",
            count: entries.len(),
        })?;
        let applied = self
            .fd
            .set_msrs(&kvm)
            .map_err(|e| Error::SetMsrs(e.into()))?;
        match msrs.get(applied) {
            Some(refused) => Err(Error::MsrNotAccepted {
                index: refused.index,
                applied,
            }),
            None => Ok(()),
        }
    }

    fn set_cpuid(&mut self, cpuid: &CpuId) -> Result<()> {
        let entries: Vec<_> = cpuid.entries.iter().map(regs::cpuid_entry_to_kvm).collect();
        let kvm = KvmCpuId::from_entries(&entries).map_err(|_| Error::TooManyEntries {
            what: "cpuid",
            count: entries.len(),
        })?;
        self.fd
            .set_cpuid2(&kvm)
            .map_err(|e| Error::SetCpuid(e.into()))
    }

    fn get_lapic(&self) -> Result<LapicState> {
        let lapic = self.fd.get_lapic().map_err(|e| Error::GetLapic(e.into()))?;
        Ok(regs::lapic_from_kvm(&lapic))
    }

    fn set_lapic(&mut self, lapic: &LapicState) -> Result<()> {
        self.fd
            .set_lapic(&regs::lapic_to_kvm(lapic))
            .map_err(|e| Error::SetLapic(e.into()))
    }
}
