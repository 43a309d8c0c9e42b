//! The WHP function table: the [`Platform`] trait (one method per `WinHvPlatform.dll` function
//! the backend calls), implemented by [`LoadedPlatform`], whose pointers come from the DLL
//! loaded from System32 at run time, and in tests by a fake that records the calls. The program
//! starts on hosts without the DLL, and [`super::probe`] explains what is missing.

use std::ffi::{c_void, CStr};
use std::sync::{Arc, OnceLock};
use std::{io, mem, ptr};

use windows_sys::core::HRESULT;
use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::Hypervisor::{
    WHV_CAPABILITY_CODE, WHV_MAP_GPA_RANGE_FLAGS, WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use super::ENABLE_HINT;
use crate::{Error, Result};

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

fn check(hr: HRESULT) -> HResult<()> {
    if hr < 0 {
        Err(HResultError(hr))
    } else {
        Ok(())
    }
}

/// The `WinHvPlatform.dll` functions the backend calls, one method each (same arguments, an
/// [`HResult`] instead of the raw `HRESULT`).
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
}

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

/// `WinHvPlatform.dll`'s functions, as loaded.
#[derive(Debug)]
pub(crate) struct LoadedPlatform {
    get_capability: GetCapabilityFn,
    create_partition: CreatePartitionFn,
    set_partition_property: SetPartitionPropertyFn,
    setup_partition: PartitionFn,
    delete_partition: PartitionFn,
    map_gpa_range: MapGpaRangeFn,
    unmap_gpa_range: UnmapGpaRangeFn,
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
fn load_library(name: &str) -> std::result::Result<HMODULE, io::Error> {
    let name = wide(name);
    // SAFETY: `name` is NUL-terminated UTF-16 that outlives the call; no file handle is given.
    let module =
        unsafe { LoadLibraryExW(name.as_ptr(), ptr::null_mut(), LOAD_LIBRARY_SEARCH_SYSTEM32) };
    if module.is_null() {
        return Err(io::Error::last_os_error());
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
    const DLL: &str = "WinHvPlatform.dll";
    let module = load_library(DLL).map_err(|e| {
        format!(
            "the Windows Hypervisor Platform is not available: {DLL} cannot be loaded ({e}); \
             {ENABLE_HINT}"
        )
    })?;
    let f = |name: &CStr| symbol(module, DLL, name);
    // SAFETY: each transmute turns the named export of WinHvPlatform.dll into a pointer to a
    // function of its documented signature.
    unsafe {
        Ok(LoadedPlatform {
            get_capability: mem::transmute::<*const c_void, GetCapabilityFn>(f(
                c"WHvGetCapability",
            )?),
            create_partition: mem::transmute::<*const c_void, CreatePartitionFn>(f(
                c"WHvCreatePartition",
            )?),
            set_partition_property: mem::transmute::<*const c_void, SetPartitionPropertyFn>(f(
                c"WHvSetPartitionProperty",
            )?),
            setup_partition: mem::transmute::<*const c_void, PartitionFn>(f(c"WHvSetupPartition")?),
            delete_partition: mem::transmute::<*const c_void, PartitionFn>(f(
                c"WHvDeletePartition",
            )?),
            map_gpa_range: mem::transmute::<*const c_void, MapGpaRangeFn>(f(c"WHvMapGpaRange")?),
            unmap_gpa_range: mem::transmute::<*const c_void, UnmapGpaRangeFn>(f(
                c"WHvUnmapGpaRange",
            )?),
        })
    }
}

impl Platform for LoadedPlatform {
    fn get_capability(&self, code: WHV_CAPABILITY_CODE, buffer: &mut [u8]) -> HResult<u32> {
        let mut written = 0u32;
        let len = u32::try_from(buffer.len()).unwrap_or(u32::MAX);
        // SAFETY: `buffer` is writable for `len` bytes and `written` outlives the call.
        check(unsafe {
            (self.get_capability)(code, buffer.as_mut_ptr().cast(), len, &mut written)
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
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        // SAFETY: `value` is readable for `len` bytes; the partition handle is the caller's.
        check(unsafe { (self.set_partition_property)(partition, code, value.as_ptr().cast(), len) })
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
