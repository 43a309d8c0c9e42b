//! A fake WHP function table for the tests: it records each call as a line of text, fails the
//! calls named by a prefix, keeps registers and local APIC pages per vCPU, returns scripted
//! exits, and models the instruction emulator for the one instruction shape each test uses:
//! a 4-byte `mov` between EAX and the exit's address (MMIO), or one `outs`/`ins` element of
//! the exit's size (string port I/O), stepping RIP past the instruction's bytes.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::sync::Mutex;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Hypervisor::*;

use super::api::{EmulatorCallbacks, EmulatorHandle, HResult, HResultError, Platform};

/// E_INVALIDARG.
pub(crate) const E_INVALIDARG: i32 = 0x8007_0057_u32 as i32;

/// The fake (see the module documentation).
#[derive(Default)]
pub(crate) struct FakePlatform {
    calls: Mutex<Vec<String>>,
    fail: Option<&'static str>,
    exits: Mutex<VecDeque<WHV_RUN_VP_EXIT_CONTEXT>>,
    registers: Mutex<HashMap<(u32, WHV_REGISTER_NAME), (u64, u64)>>,
    lapic: Mutex<HashMap<u32, Vec<u8>>>,
    capabilities: HashMap<WHV_CAPABILITY_CODE, u64>,
}

impl FakePlatform {
    pub(crate) fn failing(step: &'static str) -> Self {
        Self {
            fail: Some(step),
            ..Self::default()
        }
    }

    pub(crate) fn with_capabilities(capabilities: &[(WHV_CAPABILITY_CODE, u64)]) -> Self {
        Self {
            capabilities: capabilities.iter().copied().collect(),
            ..Self::default()
        }
    }

    fn record(&self, call: String) -> HResult<()> {
        let failed = self.fail.is_some_and(|f| call.starts_with(f));
        self.calls.lock().unwrap().push(call);
        if failed {
            Err(HResultError(E_INVALIDARG))
        } else {
            Ok(())
        }
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls that start with `prefix`.
    pub(crate) fn calls_starting(&self, prefix: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .collect()
    }

    /// Queues an exit for the next `run_virtual_processor`.
    pub(crate) fn push_exit(&self, exit: WHV_RUN_VP_EXIT_CONTEXT) {
        self.exits.lock().unwrap().push_back(exit);
    }

    /// The low 64 bits of register `name` of vCPU `vp` (0 if never written).
    pub(crate) fn reg(&self, vp: u32, name: WHV_REGISTER_NAME) -> u64 {
        self.registers
            .lock()
            .unwrap()
            .get(&(vp, name))
            .map_or(0, |r| r.0)
    }

    pub(crate) fn set_reg(&self, vp: u32, name: WHV_REGISTER_NAME, value: u64) {
        self.registers
            .lock()
            .unwrap()
            .insert((vp, name), (value, 0));
    }
}

fn value_of(v: &WHV_REGISTER_VALUE) -> (u64, u64) {
    // SAFETY: the fake stores every register as 128 bits; any bit pattern is valid.
    unsafe { (v.Reg128.Anonymous.Low64, v.Reg128.Anonymous.High64) }
}

fn value(low: u64, high: u64) -> WHV_REGISTER_VALUE {
    WHV_REGISTER_VALUE {
        Reg128: WHV_UINT128 {
            Anonymous: WHV_UINT128_0 {
                Low64: low,
                High64: high,
            },
        },
    }
}

impl Platform for FakePlatform {
    fn get_capability(&self, code: WHV_CAPABILITY_CODE, buffer: &mut [u8]) -> HResult<u32> {
        self.record(format!("capability {code}"))?;
        match self.capabilities.get(&code) {
            Some(v) => {
                let bytes = v.to_le_bytes();
                let n = bytes.len().min(buffer.len());
                buffer[..n].copy_from_slice(&bytes[..n]);
                Ok(n as u32)
            }
            None => Err(HResultError(E_INVALIDARG)),
        }
    }
    fn create_partition(&self) -> HResult<WHV_PARTITION_HANDLE> {
        self.record("create".into()).map(|()| 7)
    }
    fn set_partition_property(
        &self,
        p: WHV_PARTITION_HANDLE,
        code: WHV_PARTITION_PROPERTY_CODE,
        value: &[u8],
    ) -> HResult<()> {
        self.record(format!("property {p} {code:#x} {value:02x?}"))
    }
    fn setup_partition(&self, p: WHV_PARTITION_HANDLE) -> HResult<()> {
        self.record(format!("setup {p}"))
    }
    fn delete_partition(&self, p: WHV_PARTITION_HANDLE) -> HResult<()> {
        self.record(format!("delete {p}"))
    }
    unsafe fn map_gpa_range(
        &self,
        p: WHV_PARTITION_HANDLE,
        host: *const c_void,
        guest: u64,
        size: u64,
        flags: WHV_MAP_GPA_RANGE_FLAGS,
    ) -> HResult<()> {
        self.record(format!(
            "map {p} {:#x} {guest:#x} {size:#x} {flags}",
            host as usize
        ))
    }
    fn unmap_gpa_range(&self, p: WHV_PARTITION_HANDLE, guest: u64, size: u64) -> HResult<()> {
        self.record(format!("unmap {p} {guest:#x} {size:#x}"))
    }
    fn create_virtual_processor(&self, p: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()> {
        self.record(format!("create-vp {p} {vp}"))
    }
    fn delete_virtual_processor(&self, p: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()> {
        self.record(format!("delete-vp {p} {vp}"))
    }
    fn run_virtual_processor(
        &self,
        p: WHV_PARTITION_HANDLE,
        vp: u32,
    ) -> HResult<WHV_RUN_VP_EXIT_CONTEXT> {
        self.record(format!("run {p} {vp}"))?;
        // With no exit left the vCPU reads as cancelled, so a test never spins.
        Ok(self
            .exits
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| WHV_RUN_VP_EXIT_CONTEXT {
                ExitReason: WHvRunVpExitReasonCanceled,
                ..Default::default()
            }))
    }
    fn cancel_run_virtual_processor(&self, p: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()> {
        self.record(format!("cancel {p} {vp}"))
    }
    fn get_registers(
        &self,
        p: WHV_PARTITION_HANDLE,
        vp: u32,
        names: &[WHV_REGISTER_NAME],
        values: &mut [WHV_REGISTER_VALUE],
    ) -> HResult<()> {
        self.record(format!("get-regs {p} {vp} {}", names.len()))?;
        let registers = self.registers.lock().unwrap();
        for (name, slot) in names.iter().zip(values.iter_mut()) {
            let (low, high) = registers.get(&(vp, *name)).copied().unwrap_or((0, 0));
            *slot = value(low, high);
        }
        Ok(())
    }
    fn set_registers(
        &self,
        p: WHV_PARTITION_HANDLE,
        vp: u32,
        names: &[WHV_REGISTER_NAME],
        values: &[WHV_REGISTER_VALUE],
    ) -> HResult<()> {
        self.record(format!("set-regs {p} {vp} {names:?}"))?;
        let mut registers = self.registers.lock().unwrap();
        for (name, v) in names.iter().zip(values) {
            registers.insert((vp, *name), value_of(v));
        }
        Ok(())
    }
    fn get_lapic_state(&self, p: WHV_PARTITION_HANDLE, vp: u32, state: &mut [u8]) -> HResult<u32> {
        self.record(format!("get-lapic {p} {vp} {}", state.len()))?;
        let lapic = self.lapic.lock().unwrap();
        let page = lapic.get(&vp).cloned().unwrap_or_else(|| vec![0; 4096]);
        let n = page.len().min(state.len());
        state[..n].copy_from_slice(&page[..n]);
        Ok(n as u32)
    }
    fn set_lapic_state(&self, p: WHV_PARTITION_HANDLE, vp: u32, state: &[u8]) -> HResult<()> {
        self.record(format!("set-lapic {p} {vp} {}", state.len()))?;
        self.lapic.lock().unwrap().insert(vp, state.to_vec());
        Ok(())
    }
    fn request_interrupt(&self, p: WHV_PARTITION_HANDLE, i: &WHV_INTERRUPT_CONTROL) -> HResult<()> {
        self.record(format!(
            "interrupt {p} bits={:#x} dest={} vector={:#x}",
            i._bitfield, i.Destination, i.Vector
        ))
    }
    fn translate_gva(
        &self,
        p: WHV_PARTITION_HANDLE,
        vp: u32,
        gva: u64,
        _flags: WHV_TRANSLATE_GVA_FLAGS,
    ) -> HResult<(WHV_TRANSLATE_GVA_RESULT_CODE, u64)> {
        // Identity paging.
        self.record(format!("translate {p} {vp} {gva:#x}"))
            .map(|()| (WHvTranslateGvaResultSuccess, gva))
    }
    fn register_doorbell(
        &self,
        p: WHV_PARTITION_HANDLE,
        d: &WHV_DOORBELL_MATCH_DATA,
        _event: HANDLE,
    ) -> HResult<()> {
        self.record(format!(
            "doorbell {p} {:#x} value={:#x} len={} bits={:#x}",
            d.GuestAddress, d.Value, d.Length, d._bitfield
        ))
    }
    fn unregister_doorbell(
        &self,
        p: WHV_PARTITION_HANDLE,
        d: &WHV_DOORBELL_MATCH_DATA,
    ) -> HResult<()> {
        self.record(format!("undoorbell {p} {:#x}", d.GuestAddress))
    }
    fn create_emulator(&self) -> HResult<EmulatorHandle> {
        self.record("create-emulator".into())
            .map(|()| EmulatorHandle(0x5000 as *mut c_void))
    }
    fn destroy_emulator(&self, e: EmulatorHandle) -> HResult<()> {
        self.record(format!("destroy-emulator {:#x}", e.0 as usize))
    }
    fn try_io_emulation(
        &self,
        _e: EmulatorHandle,
        callbacks: &mut dyn EmulatorCallbacks,
        vp: &WHV_VP_EXIT_CONTEXT,
        io: &WHV_X64_IO_PORT_ACCESS_CONTEXT,
    ) -> HResult<u32> {
        self.record(format!("emulate-io {:#x}", io.PortNumber))?;
        // SAFETY: a plain u32 bit field.
        let bits = unsafe { io.AccessInfo.AsUINT32 };
        let mut access = WHV_EMULATOR_IO_ACCESS_INFO {
            Direction: (bits & 1) as u8,
            Port: io.PortNumber,
            AccessSize: ((bits >> 1) & 7) as u16,
            // One element of `outs`: the fake's "memory" at RSI is RSI's own low bytes.
            Data: io.Rsi as u32,
        };
        callbacks.io_port(&mut access)?;
        let mut names = vec![WHvX64RegisterRip];
        let mut values = vec![value(vp.Rip + u64::from(io.InstructionByteCount), 0)];
        if bits & 1 == 0 {
            names.push(WHvX64RegisterRdi);
            values.push(value(u64::from(access.Data), 0));
        }
        callbacks.set_registers(&names, &values)?;
        Ok(1)
    }
    fn try_mmio_emulation(
        &self,
        _e: EmulatorHandle,
        callbacks: &mut dyn EmulatorCallbacks,
        vp: &WHV_VP_EXIT_CONTEXT,
        mmio: &WHV_MEMORY_ACCESS_CONTEXT,
    ) -> HResult<u32> {
        self.record(format!("emulate-mmio {:#x}", mmio.Gpa))?;
        // SAFETY: a plain u32 bit field; AccessType is bits 0-1.
        let write = unsafe { mmio.AccessInfo.AsUINT32 } & 3 == WHvMemoryAccessWrite as u32;
        let mut rax = [value(0, 0)];
        callbacks.get_registers(&[WHvX64RegisterRax], &mut rax)?;
        let eax = value_of(&rax[0]).0 as u32;
        let mut data = [0u8; 8];
        data[..4].copy_from_slice(&eax.to_le_bytes());
        let mut access = WHV_EMULATOR_MEMORY_ACCESS_INFO {
            GpaAddress: mmio.Gpa,
            Direction: u8::from(write),
            AccessSize: 4,
            Data: data,
        };
        callbacks.memory(&mut access)?;
        let rip = value(vp.Rip + u64::from(mmio.InstructionByteCount), 0);
        if write {
            callbacks.set_registers(&[WHvX64RegisterRip], &[rip])?;
        } else {
            let read = u32::from_le_bytes(access.Data[..4].try_into().unwrap());
            callbacks.set_registers(
                &[WHvX64RegisterRip, WHvX64RegisterRax],
                &[rip, value(u64::from(read), 0)],
            )?;
        }
        Ok(1)
    }
}
