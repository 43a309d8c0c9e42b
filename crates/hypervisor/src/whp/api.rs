//! The WHP function tables, loaded from `WinHvPlatform.dll` (and, later, `WinHvEmulation.dll`)
//! from System32 at run time: the backend calls through these pointers, so the program starts
//! on hosts without the DLLs and [`super::probe`] explains what is missing.

use std::ffi::{c_void, CStr};
use std::sync::OnceLock;
use std::{io, mem, ptr};

use windows_sys::core::HRESULT;
use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::System::Hypervisor::{
    WHvCapabilityCodeHypervisorPresent, WHV_CAPABILITY_CODE,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use super::ENABLE_HINT;
use crate::{Error, Result};

type GetCapabilityFn =
    unsafe extern "system" fn(WHV_CAPABILITY_CODE, *mut c_void, u32, *mut u32) -> HRESULT;

/// `WinHvPlatform.dll`'s functions the backend calls.
#[derive(Debug)]
pub(crate) struct PlatformApi {
    get_capability: GetCapabilityFn,
}

static PLATFORM: OnceLock<std::result::Result<PlatformApi, String>> = OnceLock::new();

/// The platform API, loaded on first use (and kept for the process's life).
pub(crate) fn platform() -> Result<&'static PlatformApi> {
    PLATFORM
        .get_or_init(load_platform)
        .as_ref()
        .map_err(|reason| Error::HypervisorUnavailable(reason.clone()))
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

fn load_platform() -> std::result::Result<PlatformApi, String> {
    const DLL: &str = "WinHvPlatform.dll";
    let module = load_library(DLL).map_err(|e| {
        format!("the Windows Hypervisor Platform is not available: {DLL} cannot be loaded ({e}); {ENABLE_HINT}")
    })?;
    let get_capability = symbol(module, DLL, c"WHvGetCapability")?;
    Ok(PlatformApi {
        // SAFETY: `WHvGetCapability`'s documented signature is `GetCapabilityFn`'s.
        get_capability: unsafe { mem::transmute::<*const c_void, GetCapabilityFn>(get_capability) },
    })
}

impl PlatformApi {
    /// `WHvGetCapability(WHvCapabilityCodeHypervisorPresent)`.
    pub(crate) fn hypervisor_present(&self) -> Result<bool> {
        let mut present: i32 = 0;
        let mut written = 0u32;
        // SAFETY: the buffer is a BOOL (4 bytes), its size is given, and both outlive the call.
        let hr = unsafe {
            (self.get_capability)(
                WHvCapabilityCodeHypervisorPresent,
                ptr::addr_of_mut!(present).cast(),
                mem::size_of::<i32>() as u32,
                &mut written,
            )
        };
        if hr < 0 {
            return Err(Error::HypervisorUnavailable(format!(
                "WHvGetCapability failed with HRESULT {hr:#010x}; {ENABLE_HINT}"
            )));
        }
        Ok(present != 0)
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
