//! The VMM's process on Windows: every VMM the shim starts is put in one Job object that kills
//! its processes when its last handle closes, and only this process holds that handle, so a
//! shim that crashes or is killed leaves no VMM running.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStringExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, QueryFullProcessImageNameW, TerminateProcess, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE,
};

/// The exit code a killed VMM ends with (as 128 + SIGKILL on Linux).
pub const KILLED_EXIT_CODE: u32 = 137;

/// Creates `dir` and its parents. They inherit the ACL of `%ProgramData%\lcow`, which
/// `make package-windows`' install step restricts to SYSTEM and Administrators.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Creates (or truncates) `path` for writing (its ACL inherited from the state directory).
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

/// Windows processes end with an exit code, never a signal.
pub fn exit_signal(_status: &ExitStatus) -> Option<i32> {
    None
}

/// The process-wide kill-on-close job, made on first use.
struct Job(HANDLE);

// SAFETY: a job handle is a kernel object handle, usable from any thread.
unsafe impl Send for Job {}
// SAFETY: as above; the handle is only passed to thread-safe kernel calls.
unsafe impl Sync for Job {}

fn job() -> io::Result<&'static Job> {
    static JOB: OnceLock<Result<Job, i32>> = OnceLock::new();
    let made = JOB.get_or_init(|| {
        // SAFETY: null attributes and name ask for an anonymous job with default security.
        let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        // SAFETY: an all-zero JOBOBJECT_EXTENDED_LIMIT_INFORMATION is a valid (no limits)
        // value of this plain C struct.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `handle` is the job just made; `info` is a live struct of the size passed.
        let ok = unsafe {
            SetInformationJobObject(
                handle,
                JobObjectExtendedLimitInformation,
                (&raw const info).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            // SAFETY: `handle` is ours and not used after this.
            unsafe { CloseHandle(handle) };
            return Err(e);
        }
        Ok(Job(handle))
    });
    made.as_ref().map_err(|&e| io::Error::from_raw_os_error(e))
}

/// Puts a started VMM in the shim's kill-on-close job.
pub fn contain(child: &Child) -> io::Result<()> {
    let job = job()?;
    // SAFETY: both handles are open: the job for the process's life, the child's while
    // `child` is borrowed.
    let ok = unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle() as HANDLE) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An open process handle, closed on drop.
struct Process(HANDLE);

impl Process {
    fn open(pid: u32, access: u32) -> Option<Self> {
        // SAFETY: OpenProcess has no memory preconditions; a null result is checked.
        let h = unsafe { OpenProcess(access, 0, pid) };
        (!h.is_null()).then_some(Self(h))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenProcess and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Ends process `pid` with [`KILLED_EXIT_CODE`], ignoring a process that is already gone.
pub fn kill_pid(pid: u32) {
    if let Some(p) = Process::open(pid, PROCESS_TERMINATE) {
        // SAFETY: `p` holds an open handle with PROCESS_TERMINATE access.
        unsafe { TerminateProcess(p.0, KILLED_EXIT_CODE) };
    }
}

/// The image path of process `pid`, if it can be asked.
fn image_path(pid: u32) -> Option<PathBuf> {
    let p = Process::open(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
    let mut buf = vec![0u16; 32 * 1024];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` is writable for `len` UTF-16 units; the call writes at most that many and
    // sets `len` to what it wrote.
    let ok =
        unsafe { QueryFullProcessImageNameW(p.0, PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return None;
    }
    buf.truncate(len as usize);
    Some(PathBuf::from(OsString::from_wide(&buf)))
}

/// Whether `pid` is an lcow-vmm process (so a recycled pid is never killed).
pub fn is_vmm(pid: u32) -> bool {
    image_path(pid)
        .and_then(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
        })
        .is_some_and(|n| n.starts_with("lcow-vmm"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// This test binary is not lcow-vmm; a pid that does not exist is not either.
    #[test]
    fn test_is_vmm_knows_other_processes() {
        assert!(!is_vmm(std::process::id()));
        assert!(image_path(std::process::id()).is_some());
        assert!(!is_vmm(0xFFFF_FFF0));
    }

    /// Not a test: the process [`test_contained_child_killed_by_pid`] kills.
    #[test]
    #[ignore = "run by test_contained_child_killed_by_pid as its child"]
    fn sleeper() {
        if std::env::var_os("LCOW_TEST_SLEEPER").is_some() {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }

    /// A child put in the job is killed by pid and ends with the kill's exit code.
    #[test]
    fn test_contained_child_killed_by_pid() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sys::windows::process::tests::sleeper",
                "--ignored",
            ])
            .env("LCOW_TEST_SLEEPER", "1")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        contain(&child).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sleeper ended early"
        );
        kill_pid(child.id());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(KILLED_EXIT_CODE as i32), "{status:?}");
    }
}
