//! The WHP function table: the [`Platform`] trait, one method per `WinHvPlatform.dll` or
//! `WinHvEmulation.dll` function the backend calls (same arguments, an [`HResult`] instead of
//! the raw `HRESULT`). [`super::loaded::LoadedPlatform`] implements it with the DLLs' exports,
//! loaded from System32 at run time; the tests implement it with a fake that records the calls
//! and scripts the exits. The program starts on hosts without the DLLs, and [`super::probe`]
//! explains what is missing.

use std::ffi::c_void;
use std::io;

use windows_sys::core::HRESULT;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::Hypervisor::{
    WHV_CAPABILITY_CODE, WHV_DOORBELL_MATCH_DATA, WHV_EMULATOR_IO_ACCESS_INFO,
    WHV_EMULATOR_MEMORY_ACCESS_INFO, WHV_INTERRUPT_CONTROL, WHV_MAP_GPA_RANGE_FLAGS,
    WHV_MEMORY_ACCESS_CONTEXT, WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE,
    WHV_REGISTER_NAME, WHV_REGISTER_VALUE, WHV_RUN_VP_EXIT_CONTEXT, WHV_TRANSLATE_GVA_FLAGS,
    WHV_TRANSLATE_GVA_RESULT_CODE, WHV_VP_EXIT_CONTEXT, WHV_X64_IO_PORT_ACCESS_CONTEXT,
};

pub(crate) use super::loaded::platform;
#[cfg(test)]
pub(crate) use super::loaded::running_under_wine;

/// A failed WHP call: its HRESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HResultError(pub HRESULT);

impl From<HResultError> for io::Error {
    fn from(e: HResultError) -> Self {
        // Windows formats an HRESULT given as a raw OS error (FormatMessage knows them).
        io::Error::from_raw_os_error(e.0)
    }
}

pub(crate) type HResult<T> = std::result::Result<T, HResultError>;

/// E_FAIL: what a callback answers the emulator when our side of an access failed.
pub(crate) const E_FAIL: HRESULT = 0x8000_4005_u32 as HRESULT;

pub(crate) fn check(hr: HRESULT) -> HResult<()> {
    if hr < 0 {
        Err(HResultError(hr))
    } else {
        Ok(())
    }
}

/// An instruction emulator made by `WHvEmulatorCreateEmulator` (one per vCPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmulatorHandle(pub *mut c_void);

// SAFETY: the handle is an opaque token; the emulator it names is used by one vCPU thread at a
// time (the vCPU owns it), and WHP allows its use from any thread.
unsafe impl Send for EmulatorHandle {}

/// The side of an emulated instruction the VMM answers: WinHvEmulation calls these while it
/// decodes and completes one port I/O or MMIO instruction (`WHV_EMULATOR_CALLBACKS`).
pub(crate) trait EmulatorCallbacks {
    /// One port access; for reads, fill `access.Data`.
    fn io_port(&mut self, access: &mut WHV_EMULATOR_IO_ACCESS_INFO) -> HResult<()>;
    /// One memory access to an address no slot backs; for reads, fill `access.Data`.
    fn memory(&mut self, access: &mut WHV_EMULATOR_MEMORY_ACCESS_INFO) -> HResult<()>;
    /// Reads the vCPU's registers `names` into `values`.
    fn get_registers(
        &mut self,
        names: &[WHV_REGISTER_NAME],
        values: &mut [WHV_REGISTER_VALUE],
    ) -> HResult<()>;
    /// Writes the vCPU's registers `names` from `values`.
    fn set_registers(
        &mut self,
        names: &[WHV_REGISTER_NAME],
        values: &[WHV_REGISTER_VALUE],
    ) -> HResult<()>;
    /// Translates the guest virtual page of `gva` to a guest physical address.
    fn translate_gva_page(
        &mut self,
        gva: u64,
        flags: WHV_TRANSLATE_GVA_FLAGS,
    ) -> HResult<(WHV_TRANSLATE_GVA_RESULT_CODE, u64)>;
}

/// The functions the backend calls (see the module documentation).
pub(crate) trait Platform: Send + Sync {
    /// `WHvGetCapability`: fills `buffer`, returns the bytes written.
    fn get_capability(&self, code: WHV_CAPABILITY_CODE, buffer: &mut [u8]) -> HResult<u32>;
    /// `WHvCreatePartition`.
    fn create_partition(&self) -> HResult<WHV_PARTITION_HANDLE>;
    /// `WHvSetPartitionProperty` with `value`'s bytes.
    fn set_partition_property(
        &self,
        partition: WHV_PARTITION_HANDLE,
        code: WHV_PARTITION_PROPERTY_CODE,
        value: &[u8],
    ) -> HResult<()>;
    /// `WHvSetupPartition`.
    fn setup_partition(&self, partition: WHV_PARTITION_HANDLE) -> HResult<()>;
    /// `WHvDeletePartition`.
    fn delete_partition(&self, partition: WHV_PARTITION_HANDLE) -> HResult<()>;
    /// `WHvMapGpaRange`.
    ///
    /// # Safety
    ///
    /// `host .. host + size` must stay mapped memory of this process until it is unmapped.
    unsafe fn map_gpa_range(
        &self,
        partition: WHV_PARTITION_HANDLE,
        host: *const c_void,
        guest: u64,
        size: u64,
        flags: WHV_MAP_GPA_RANGE_FLAGS,
    ) -> HResult<()>;
    /// `WHvUnmapGpaRange`.
    fn unmap_gpa_range(
        &self,
        partition: WHV_PARTITION_HANDLE,
        guest: u64,
        size: u64,
    ) -> HResult<()>;
    /// `WHvCreateVirtualProcessor` (no flags).
    fn create_virtual_processor(&self, partition: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()>;
    /// `WHvDeleteVirtualProcessor`.
    fn delete_virtual_processor(&self, partition: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()>;
    /// `WHvRunVirtualProcessor`: runs until an exit and returns its context.
    fn run_virtual_processor(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
    ) -> HResult<WHV_RUN_VP_EXIT_CONTEXT>;
    /// `WHvCancelRunVirtualProcessor` (no flags).
    fn cancel_run_virtual_processor(&self, partition: WHV_PARTITION_HANDLE, vp: u32)
        -> HResult<()>;
    /// `WHvGetVirtualProcessorRegisters`; `values` has one slot per name.
    fn get_registers(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        names: &[WHV_REGISTER_NAME],
        values: &mut [WHV_REGISTER_VALUE],
    ) -> HResult<()>;
    /// `WHvSetVirtualProcessorRegisters`; `values` has one value per name.
    fn set_registers(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        names: &[WHV_REGISTER_NAME],
        values: &[WHV_REGISTER_VALUE],
    ) -> HResult<()>;
    /// `WHvGetVirtualProcessorInterruptControllerState2`: the local APIC's register page into
    /// `state`; returns the bytes written.
    fn get_lapic_state(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        state: &mut [u8],
    ) -> HResult<u32>;
    /// `WHvSetVirtualProcessorInterruptControllerState2`.
    fn set_lapic_state(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        state: &[u8],
    ) -> HResult<()>;
    /// `WHvRequestInterrupt`.
    fn request_interrupt(
        &self,
        partition: WHV_PARTITION_HANDLE,
        interrupt: &WHV_INTERRUPT_CONTROL,
    ) -> HResult<()>;
    /// `WHvTranslateGva`: the result code and the guest physical address.
    fn translate_gva(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        gva: u64,
        flags: WHV_TRANSLATE_GVA_FLAGS,
    ) -> HResult<(WHV_TRANSLATE_GVA_RESULT_CODE, u64)>;
    /// `WHvRegisterPartitionDoorbellEvent`: guest writes matching `doorbell` set `event`.
    fn register_doorbell(
        &self,
        partition: WHV_PARTITION_HANDLE,
        doorbell: &WHV_DOORBELL_MATCH_DATA,
        event: HANDLE,
    ) -> HResult<()>;
    /// `WHvUnregisterPartitionDoorbellEvent`.
    fn unregister_doorbell(
        &self,
        partition: WHV_PARTITION_HANDLE,
        doorbell: &WHV_DOORBELL_MATCH_DATA,
    ) -> HResult<()>;
    /// `WHvEmulatorCreateEmulator` with callbacks that forward to the [`EmulatorCallbacks`]
    /// each `try_*_emulation` call is given.
    fn create_emulator(&self) -> HResult<EmulatorHandle>;
    /// `WHvEmulatorDestroyEmulator`.
    fn destroy_emulator(&self, emulator: EmulatorHandle) -> HResult<()>;
    /// `WHvEmulatorTryIoEmulation`: emulates the port I/O instruction of the exit, answering
    /// its accesses through `callbacks`; returns the `WHV_EMULATOR_STATUS` bits.
    fn try_io_emulation(
        &self,
        emulator: EmulatorHandle,
        callbacks: &mut dyn EmulatorCallbacks,
        vp_context: &WHV_VP_EXIT_CONTEXT,
        io: &WHV_X64_IO_PORT_ACCESS_CONTEXT,
    ) -> HResult<u32>;
    /// `WHvEmulatorTryMmioEmulation`, as [`Platform::try_io_emulation`] for an MMIO exit.
    fn try_mmio_emulation(
        &self,
        emulator: EmulatorHandle,
        callbacks: &mut dyn EmulatorCallbacks,
        vp_context: &WHV_VP_EXIT_CONTEXT,
        mmio: &WHV_MEMORY_ACCESS_CONTEXT,
    ) -> HResult<u32>;
}
