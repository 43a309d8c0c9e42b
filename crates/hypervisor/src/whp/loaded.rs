//! [`LoadedPlatform`]: the [`Platform`] function table filled from `WinHvPlatform.dll` and
//! `WinHvEmulation.dll`, loaded from System32 on first use and kept for the process's life.
//! The emulator's callbacks are `extern "system"` trampolines that forward to the
//! [`EmulatorCallbacks`] each emulation call passes as its context.

use std::ffi::{c_void, CStr};
use std::sync::{Arc, OnceLock};
use std::{io, mem, ptr, slice};

use windows_sys::core::HRESULT;
use windows_sys::Win32::Foundation::{HANDLE, HMODULE};
use windows_sys::Win32::System::Hypervisor::{
    WHV_CAPABILITY_CODE, WHV_DOORBELL_MATCH_DATA, WHV_EMULATOR_CALLBACKS,
    WHV_EMULATOR_IO_ACCESS_INFO, WHV_EMULATOR_MEMORY_ACCESS_INFO, WHV_EMULATOR_STATUS,
    WHV_INTERRUPT_CONTROL, WHV_MAP_GPA_RANGE_FLAGS, WHV_MEMORY_ACCESS_CONTEXT,
    WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE, WHV_REGISTER_NAME, WHV_REGISTER_VALUE,
    WHV_RUN_VP_EXIT_CONTEXT, WHV_TRANSLATE_GVA_FLAGS, WHV_TRANSLATE_GVA_RESULT,
    WHV_TRANSLATE_GVA_RESULT_CODE, WHV_VP_EXIT_CONTEXT, WHV_X64_IO_PORT_ACCESS_CONTEXT,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use super::api::{check, EmulatorCallbacks, EmulatorHandle, HResult, Platform, E_FAIL};
use super::ENABLE_HINT;
use crate::{Error, Result};

type GetCapabilityFn =
    unsafe extern "system" fn(WHV_CAPABILITY_CODE, *mut c_void, u32, *mut u32) -> HRESULT;
type CreatePartitionFn = unsafe extern "system" fn(*mut WHV_PARTITION_HANDLE) -> HRESULT;
type SetPartitionPropertyFn = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    WHV_PARTITION_PROPERTY_CODE,
    *const c_void,
    u32,
) -> HRESULT;
type PartitionFn = unsafe extern "system" fn(WHV_PARTITION_HANDLE) -> HRESULT;
type MapGpaRangeFn = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    *const c_void,
    u64,
    u64,
    WHV_MAP_GPA_RANGE_FLAGS,
) -> HRESULT;
type UnmapGpaRangeFn = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u64, u64) -> HRESULT;
type VpFlagsFn = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32, u32) -> HRESULT;
type VpFn = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32) -> HRESULT;
type RunVpFn = unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32, *mut c_void, u32) -> HRESULT;
type GetRegistersFn = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    *const WHV_REGISTER_NAME,
    u32,
    *mut WHV_REGISTER_VALUE,
) -> HRESULT;
type SetRegistersFn = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    *const WHV_REGISTER_NAME,
    u32,
    *const WHV_REGISTER_VALUE,
) -> HRESULT;
type GetStateFn =
    unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32, *mut c_void, u32, *mut u32) -> HRESULT;
type SetStateFn =
    unsafe extern "system" fn(WHV_PARTITION_HANDLE, u32, *const c_void, u32) -> HRESULT;
type RequestInterruptFn =
    unsafe extern "system" fn(WHV_PARTITION_HANDLE, *const WHV_INTERRUPT_CONTROL, u32) -> HRESULT;
type TranslateGvaFn = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    u32,
    u64,
    WHV_TRANSLATE_GVA_FLAGS,
    *mut WHV_TRANSLATE_GVA_RESULT,
    *mut u64,
) -> HRESULT;
type RegisterDoorbellFn = unsafe extern "system" fn(
    WHV_PARTITION_HANDLE,
    *const WHV_DOORBELL_MATCH_DATA,
    HANDLE,
) -> HRESULT;
type UnregisterDoorbellFn =
    unsafe extern "system" fn(WHV_PARTITION_HANDLE, *const WHV_DOORBELL_MATCH_DATA) -> HRESULT;
type CreateEmulatorFn =
    unsafe extern "system" fn(*const WHV_EMULATOR_CALLBACKS, *mut *mut c_void) -> HRESULT;
type DestroyEmulatorFn = unsafe extern "system" fn(*const c_void) -> HRESULT;
type TryIoEmulationFn = unsafe extern "system" fn(
    *const c_void,
    *const c_void,
    *const WHV_VP_EXIT_CONTEXT,
    *const WHV_X64_IO_PORT_ACCESS_CONTEXT,
    *mut WHV_EMULATOR_STATUS,
) -> HRESULT;
type TryMmioEmulationFn = unsafe extern "system" fn(
    *const c_void,
    *const c_void,
    *const WHV_VP_EXIT_CONTEXT,
    *const WHV_MEMORY_ACCESS_CONTEXT,
    *mut WHV_EMULATOR_STATUS,
) -> HRESULT;

/// `WinHvPlatform.dll`'s and `WinHvEmulation.dll`'s functions, as loaded.
#[derive(Debug)]
pub(crate) struct LoadedPlatform {
    get_capability: GetCapabilityFn,
    create_partition: CreatePartitionFn,
    set_partition_property: SetPartitionPropertyFn,
    setup_partition: PartitionFn,
    delete_partition: PartitionFn,
    map_gpa_range: MapGpaRangeFn,
    unmap_gpa_range: UnmapGpaRangeFn,
    create_vp: VpFlagsFn,
    delete_vp: VpFn,
    run_vp: RunVpFn,
    cancel_run_vp: VpFlagsFn,
    get_registers: GetRegistersFn,
    set_registers: SetRegistersFn,
    get_lapic: GetStateFn,
    set_lapic: SetStateFn,
    request_interrupt: RequestInterruptFn,
    translate_gva: TranslateGvaFn,
    register_doorbell: RegisterDoorbellFn,
    unregister_doorbell: UnregisterDoorbellFn,
    create_emulator: CreateEmulatorFn,
    destroy_emulator: DestroyEmulatorFn,
    try_io_emulation: TryIoEmulationFn,
    try_mmio_emulation: TryMmioEmulationFn,
}

static PLATFORM: OnceLock<std::result::Result<Arc<LoadedPlatform>, String>> = OnceLock::new();

/// The platform API, loaded on first use (and kept for the process's life).
pub(crate) fn platform() -> Result<Arc<LoadedPlatform>> {
    PLATFORM
        .get_or_init(|| load_platform().map(Arc::new))
        .clone()
        .map_err(Error::HypervisorUnavailable)
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

/// Loads `name` from System32 only (never from the program's directory or PATH).
fn load_library(name: &str) -> std::result::Result<HMODULE, String> {
    let wide_name = wide(name);
    // SAFETY: `wide_name` is NUL-terminated UTF-16 that outlives the call; no file handle is
    // given.
    let module = unsafe {
        LoadLibraryExW(
            wide_name.as_ptr(),
            ptr::null_mut(),
            LOAD_LIBRARY_SEARCH_SYSTEM32,
        )
    };
    if module.is_null() {
        return Err(format!(
            "the Windows Hypervisor Platform is not available: {name} cannot be loaded ({}); \
             {ENABLE_HINT}",
            io::Error::last_os_error()
        ));
    }
    Ok(module)
}

/// The address of `name` in `module`.
fn symbol(module: HMODULE, dll: &str, name: &CStr) -> std::result::Result<*const c_void, String> {
    // SAFETY: `module` is a loaded module; `name` is NUL-terminated.
    match unsafe { GetProcAddress(module, name.as_ptr().cast()) } {
        Some(f) => Ok(f as *const c_void),
        None => Err(format!(
            "the Windows Hypervisor Platform on this host is too old: {dll} has no {}; \
             update Windows",
            name.to_string_lossy()
        )),
    }
}

fn load_platform() -> std::result::Result<LoadedPlatform, String> {
    const PLATFORM_DLL: &str = "WinHvPlatform.dll";
    const EMULATION_DLL: &str = "WinHvEmulation.dll";
    let platform = load_library(PLATFORM_DLL)?;
    let emulation = load_library(EMULATION_DLL)?;
    let p = |name: &CStr| symbol(platform, PLATFORM_DLL, name);
    let e = |name: &CStr| symbol(emulation, EMULATION_DLL, name);
    // SAFETY: each transmute turns the named export of its DLL into a pointer to a function of
    // its documented signature (the same as windows-sys declares); the DLLs stay loaded.
    unsafe {
        Ok(LoadedPlatform {
            get_capability: mem::transmute::<*const c_void, GetCapabilityFn>(p(
                c"WHvGetCapability",
            )?),
            create_partition: mem::transmute::<*const c_void, CreatePartitionFn>(p(
                c"WHvCreatePartition",
            )?),
            set_partition_property: mem::transmute::<*const c_void, SetPartitionPropertyFn>(p(
                c"WHvSetPartitionProperty",
            )?),
            setup_partition: mem::transmute::<*const c_void, PartitionFn>(p(c"WHvSetupPartition")?),
            delete_partition: mem::transmute::<*const c_void, PartitionFn>(p(
                c"WHvDeletePartition",
            )?),
            map_gpa_range: mem::transmute::<*const c_void, MapGpaRangeFn>(p(c"WHvMapGpaRange")?),
            unmap_gpa_range: mem::transmute::<*const c_void, UnmapGpaRangeFn>(p(
                c"WHvUnmapGpaRange",
            )?),
            create_vp: mem::transmute::<*const c_void, VpFlagsFn>(p(c"WHvCreateVirtualProcessor")?),
            delete_vp: mem::transmute::<*const c_void, VpFn>(p(c"WHvDeleteVirtualProcessor")?),
            run_vp: mem::transmute::<*const c_void, RunVpFn>(p(c"WHvRunVirtualProcessor")?),
            cancel_run_vp: mem::transmute::<*const c_void, VpFlagsFn>(p(
                c"WHvCancelRunVirtualProcessor",
            )?),
            get_registers: mem::transmute::<*const c_void, GetRegistersFn>(p(
                c"WHvGetVirtualProcessorRegisters",
            )?),
            set_registers: mem::transmute::<*const c_void, SetRegistersFn>(p(
                c"WHvSetVirtualProcessorRegisters",
            )?),
            get_lapic: mem::transmute::<*const c_void, GetStateFn>(p(
                c"WHvGetVirtualProcessorInterruptControllerState2",
            )?),
            set_lapic: mem::transmute::<*const c_void, SetStateFn>(p(
                c"WHvSetVirtualProcessorInterruptControllerState2",
            )?),
            request_interrupt: mem::transmute::<*const c_void, RequestInterruptFn>(p(
                c"WHvRequestInterrupt",
            )?),
            translate_gva: mem::transmute::<*const c_void, TranslateGvaFn>(p(c"WHvTranslateGva")?),
            register_doorbell: mem::transmute::<*const c_void, RegisterDoorbellFn>(p(
                c"WHvRegisterPartitionDoorbellEvent",
            )?),
            unregister_doorbell: mem::transmute::<*const c_void, UnregisterDoorbellFn>(p(
                c"WHvUnregisterPartitionDoorbellEvent",
            )?),
            create_emulator: mem::transmute::<*const c_void, CreateEmulatorFn>(e(
                c"WHvEmulatorCreateEmulator",
            )?),
            destroy_emulator: mem::transmute::<*const c_void, DestroyEmulatorFn>(e(
                c"WHvEmulatorDestroyEmulator",
            )?),
            try_io_emulation: mem::transmute::<*const c_void, TryIoEmulationFn>(e(
                c"WHvEmulatorTryIoEmulation",
            )?),
            try_mmio_emulation: mem::transmute::<*const c_void, TryMmioEmulationFn>(e(
                c"WHvEmulatorTryMmioEmulation",
            )?),
        })
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The emulator's `context`: a pointer to the caller's `&mut dyn EmulatorCallbacks`.
type Context<'a> = &'a mut dyn EmulatorCallbacks;

/// The callbacks of a `try_*_emulation` call.
///
/// # Safety
///
/// `context` must be the pointer [`LoadedPlatform::try_io_emulation`] or
/// [`LoadedPlatform::try_mmio_emulation`] passed, valid for the duration of that call.
unsafe fn callbacks<'a>(context: *const c_void) -> &'a mut dyn EmulatorCallbacks {
    // SAFETY: per the function's contract `context` points to a live `Context` that nothing
    // else uses while the emulator runs its callbacks (one at a time, on the caller's thread).
    unsafe { *(context as *mut Context<'a>) }
}

fn hr(result: HResult<()>) -> HRESULT {
    match result {
        Ok(()) => 0,
        Err(e) => e.0,
    }
}

unsafe extern "system" fn io_port_callback(
    context: *const c_void,
    access: *mut WHV_EMULATOR_IO_ACCESS_INFO,
) -> HRESULT {
    if access.is_null() {
        return E_FAIL;
    }
    // SAFETY: the emulator passes our context and a valid access record for this call.
    hr(unsafe { callbacks(context).io_port(&mut *access) })
}

unsafe extern "system" fn memory_callback(
    context: *const c_void,
    access: *mut WHV_EMULATOR_MEMORY_ACCESS_INFO,
) -> HRESULT {
    if access.is_null() {
        return E_FAIL;
    }
    // SAFETY: as in `io_port_callback`.
    hr(unsafe { callbacks(context).memory(&mut *access) })
}

unsafe extern "system" fn get_registers_callback(
    context: *const c_void,
    names: *const WHV_REGISTER_NAME,
    count: u32,
    values: *mut WHV_REGISTER_VALUE,
) -> HRESULT {
    if count == 0 {
        return 0;
    }
    if names.is_null() || values.is_null() {
        return E_FAIL;
    }
    // SAFETY: the emulator passes `count` names and room for `count` values, valid for the
    // call; `callbacks` as in `io_port_callback`.
    unsafe {
        let names = slice::from_raw_parts(names, count as usize);
        let values = slice::from_raw_parts_mut(values, count as usize);
        hr(callbacks(context).get_registers(names, values))
    }
}

unsafe extern "system" fn set_registers_callback(
    context: *const c_void,
    names: *const WHV_REGISTER_NAME,
    count: u32,
    values: *const WHV_REGISTER_VALUE,
) -> HRESULT {
    if count == 0 {
        return 0;
    }
    if names.is_null() || values.is_null() {
        return E_FAIL;
    }
    // SAFETY: as in `get_registers_callback`, with `count` values to read.
    unsafe {
        let names = slice::from_raw_parts(names, count as usize);
        let values = slice::from_raw_parts(values, count as usize);
        hr(callbacks(context).set_registers(names, values))
    }
}

unsafe extern "system" fn translate_gva_callback(
    context: *const c_void,
    gva: u64,
    flags: WHV_TRANSLATE_GVA_FLAGS,
    result: *mut WHV_TRANSLATE_GVA_RESULT_CODE,
    gpa: *mut u64,
) -> HRESULT {
    if result.is_null() || gpa.is_null() {
        return E_FAIL;
    }
    // SAFETY: as in `io_port_callback`; `result` and `gpa` are the emulator's outputs.
    unsafe {
        match callbacks(context).translate_gva_page(gva, flags) {
            Ok((code, address)) => {
                *result = code;
                *gpa = address;
                0
            }
            Err(e) => e.0,
        }
    }
}

const CALLBACKS: WHV_EMULATOR_CALLBACKS = WHV_EMULATOR_CALLBACKS {
    Size: mem::size_of::<WHV_EMULATOR_CALLBACKS>() as u32,
    Reserved: 0,
    WHvEmulatorIoPortCallback: Some(io_port_callback),
    WHvEmulatorMemoryCallback: Some(memory_callback),
    WHvEmulatorGetVirtualProcessorRegisters: Some(get_registers_callback),
    WHvEmulatorSetVirtualProcessorRegisters: Some(set_registers_callback),
    WHvEmulatorTranslateGvaPage: Some(translate_gva_callback),
};

impl Platform for LoadedPlatform {
    fn get_capability(&self, code: WHV_CAPABILITY_CODE, buffer: &mut [u8]) -> HResult<u32> {
        let mut written = 0u32;
        // SAFETY: `buffer` is writable for its length and `written` outlives the call.
        check(unsafe {
            (self.get_capability)(
                code,
                buffer.as_mut_ptr().cast(),
                len_u32(buffer.len()),
                &mut written,
            )
        })?;
        Ok(written)
    }

    fn create_partition(&self) -> HResult<WHV_PARTITION_HANDLE> {
        let mut handle: WHV_PARTITION_HANDLE = 0;
        // SAFETY: `handle` outlives the call, which writes the new partition's handle to it.
        check(unsafe { (self.create_partition)(&mut handle) })?;
        Ok(handle)
    }

    fn set_partition_property(
        &self,
        partition: WHV_PARTITION_HANDLE,
        code: WHV_PARTITION_PROPERTY_CODE,
        value: &[u8],
    ) -> HResult<()> {
        // SAFETY: `value` is readable for its length; WHP checks the partition handle.
        check(unsafe {
            (self.set_partition_property)(
                partition,
                code,
                value.as_ptr().cast(),
                len_u32(value.len()),
            )
        })
    }

    fn setup_partition(&self, partition: WHV_PARTITION_HANDLE) -> HResult<()> {
        // SAFETY: a partition handle from `create_partition`; WHP checks it.
        check(unsafe { (self.setup_partition)(partition) })
    }

    fn delete_partition(&self, partition: WHV_PARTITION_HANDLE) -> HResult<()> {
        // SAFETY: as in `setup_partition`.
        check(unsafe { (self.delete_partition)(partition) })
    }

    unsafe fn map_gpa_range(
        &self,
        partition: WHV_PARTITION_HANDLE,
        host: *const c_void,
        guest: u64,
        size: u64,
        flags: WHV_MAP_GPA_RANGE_FLAGS,
    ) -> HResult<()> {
        // SAFETY: the caller keeps `host .. host + size` mapped until it is unmapped.
        check(unsafe { (self.map_gpa_range)(partition, host, guest, size, flags) })
    }

    fn unmap_gpa_range(
        &self,
        partition: WHV_PARTITION_HANDLE,
        guest: u64,
        size: u64,
    ) -> HResult<()> {
        // SAFETY: as in `setup_partition`; unmapping only removes the guest's view.
        check(unsafe { (self.unmap_gpa_range)(partition, guest, size) })
    }

    fn create_virtual_processor(&self, partition: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()> {
        // SAFETY: as in `setup_partition`; WHP checks the index.
        check(unsafe { (self.create_vp)(partition, vp, 0) })
    }

    fn delete_virtual_processor(&self, partition: WHV_PARTITION_HANDLE, vp: u32) -> HResult<()> {
        // SAFETY: as in `create_virtual_processor`.
        check(unsafe { (self.delete_vp)(partition, vp) })
    }

    fn run_virtual_processor(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
    ) -> HResult<WHV_RUN_VP_EXIT_CONTEXT> {
        let mut exit = WHV_RUN_VP_EXIT_CONTEXT::default();
        // SAFETY: `exit` is writable for its size and outlives the call.
        check(unsafe {
            (self.run_vp)(
                partition,
                vp,
                (&mut exit as *mut WHV_RUN_VP_EXIT_CONTEXT).cast(),
                mem::size_of::<WHV_RUN_VP_EXIT_CONTEXT>() as u32,
            )
        })?;
        Ok(exit)
    }

    fn cancel_run_virtual_processor(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
    ) -> HResult<()> {
        // SAFETY: as in `create_virtual_processor`; cancelling is allowed from any thread.
        check(unsafe { (self.cancel_run_vp)(partition, vp, 0) })
    }

    fn get_registers(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        names: &[WHV_REGISTER_NAME],
        values: &mut [WHV_REGISTER_VALUE],
    ) -> HResult<()> {
        let count = names.len().min(values.len());
        // SAFETY: `names` and `values` hold at least `count` entries for the call.
        check(unsafe {
            (self.get_registers)(
                partition,
                vp,
                names.as_ptr(),
                len_u32(count),
                values.as_mut_ptr(),
            )
        })
    }

    fn set_registers(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        names: &[WHV_REGISTER_NAME],
        values: &[WHV_REGISTER_VALUE],
    ) -> HResult<()> {
        let count = names.len().min(values.len());
        // SAFETY: as in `get_registers`, read only.
        check(unsafe {
            (self.set_registers)(
                partition,
                vp,
                names.as_ptr(),
                len_u32(count),
                values.as_ptr(),
            )
        })
    }

    fn get_lapic_state(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        state: &mut [u8],
    ) -> HResult<u32> {
        let mut written = 0u32;
        // SAFETY: `state` is writable for its length; `written` outlives the call.
        check(unsafe {
            (self.get_lapic)(
                partition,
                vp,
                state.as_mut_ptr().cast(),
                len_u32(state.len()),
                &mut written,
            )
        })?;
        Ok(written)
    }

    fn set_lapic_state(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        state: &[u8],
    ) -> HResult<()> {
        // SAFETY: `state` is readable for its length.
        check(unsafe {
            (self.set_lapic)(partition, vp, state.as_ptr().cast(), len_u32(state.len()))
        })
    }

    fn request_interrupt(
        &self,
        partition: WHV_PARTITION_HANDLE,
        interrupt: &WHV_INTERRUPT_CONTROL,
    ) -> HResult<()> {
        // SAFETY: `interrupt` is a valid record of the size given, for the call.
        check(unsafe {
            (self.request_interrupt)(
                partition,
                interrupt,
                mem::size_of::<WHV_INTERRUPT_CONTROL>() as u32,
            )
        })
    }

    fn translate_gva(
        &self,
        partition: WHV_PARTITION_HANDLE,
        vp: u32,
        gva: u64,
        flags: WHV_TRANSLATE_GVA_FLAGS,
    ) -> HResult<(WHV_TRANSLATE_GVA_RESULT_CODE, u64)> {
        let mut result = WHV_TRANSLATE_GVA_RESULT::default();
        let mut gpa = 0u64;
        // SAFETY: `result` and `gpa` outlive the call, which writes them.
        check(unsafe { (self.translate_gva)(partition, vp, gva, flags, &mut result, &mut gpa) })?;
        Ok((result.ResultCode, gpa))
    }

    fn register_doorbell(
        &self,
        partition: WHV_PARTITION_HANDLE,
        doorbell: &WHV_DOORBELL_MATCH_DATA,
        event: HANDLE,
    ) -> HResult<()> {
        // SAFETY: `doorbell` is valid for the call; `event` is the caller's open event handle,
        // which it keeps open until the doorbell is unregistered.
        check(unsafe { (self.register_doorbell)(partition, doorbell, event) })
    }

    fn unregister_doorbell(
        &self,
        partition: WHV_PARTITION_HANDLE,
        doorbell: &WHV_DOORBELL_MATCH_DATA,
    ) -> HResult<()> {
        // SAFETY: as in `register_doorbell`.
        check(unsafe { (self.unregister_doorbell)(partition, doorbell) })
    }

    fn create_emulator(&self) -> HResult<EmulatorHandle> {
        let mut emulator = ptr::null_mut();
        // SAFETY: `CALLBACKS` is a static table of valid callbacks; `emulator` outlives the
        // call, which writes the new emulator's handle.
        check(unsafe { (self.create_emulator)(&CALLBACKS, &mut emulator) })?;
        Ok(EmulatorHandle(emulator))
    }

    fn destroy_emulator(&self, emulator: EmulatorHandle) -> HResult<()> {
        // SAFETY: a handle from `create_emulator`, destroyed once by its owner.
        check(unsafe { (self.destroy_emulator)(emulator.0) })
    }

    fn try_io_emulation(
        &self,
        emulator: EmulatorHandle,
        callbacks: &mut dyn EmulatorCallbacks,
        vp_context: &WHV_VP_EXIT_CONTEXT,
        io: &WHV_X64_IO_PORT_ACCESS_CONTEXT,
    ) -> HResult<u32> {
        let mut context: Context<'_> = callbacks;
        let mut status = WHV_EMULATOR_STATUS { AsUINT32: 0 };
        // SAFETY: `context` outlives the call and is what the trampolines expect; the exit
        // records are valid for the call; `status` is written by it.
        check(unsafe {
            (self.try_io_emulation)(
                emulator.0,
                (&mut context as *mut Context<'_>).cast_const().cast(),
                vp_context,
                io,
                &mut status,
            )
        })?;
        // SAFETY: the status is a plain u32 bit field.
        Ok(unsafe { status.AsUINT32 })
    }

    fn try_mmio_emulation(
        &self,
        emulator: EmulatorHandle,
        callbacks: &mut dyn EmulatorCallbacks,
        vp_context: &WHV_VP_EXIT_CONTEXT,
        mmio: &WHV_MEMORY_ACCESS_CONTEXT,
    ) -> HResult<u32> {
        let mut context: Context<'_> = callbacks;
        let mut status = WHV_EMULATOR_STATUS { AsUINT32: 0 };
        // SAFETY: as in `try_io_emulation`.
        check(unsafe {
            (self.try_mmio_emulation)(
                emulator.0,
                (&mut context as *mut Context<'_>).cast_const().cast(),
                vp_context,
                mmio,
                &mut status,
            )
        })?;
        // SAFETY: as in `try_io_emulation`.
        Ok(unsafe { status.AsUINT32 })
    }
}

/// Whether this program runs under Wine (its ntdll exports `wine_get_version`).
#[cfg(test)]
pub(crate) fn running_under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
    let ntdll = wide("ntdll.dll");
    // SAFETY: `ntdll` is NUL-terminated UTF-16; ntdll is loaded in every process.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    // SAFETY: as in `symbol`.
    !module.is_null()
        && unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
}
