//! `xattr DIR [NAMESPACE]`: extended attributes on the file system holding DIR: set, get back
//! byte for byte, list, replace, remove (then ENODATA), and XATTR_CREATE on an existing name
//! refused. NAMESPACE is `user` (the default) or another prefix the file system takes (Linux
//! before 6.6 keeps no `user.*` attributes on tmpfs; `security.*` it does).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::ok;

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).context("path with a NUL byte")
}

fn set(p: &CString, name: &CString, value: &[u8], flags: i32) -> std::io::Result<()> {
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn get(p: &CString, name: &CString) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid strings; the buffer's length is passed.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    Ok(buf)
}

fn list(p: &CString) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    // SAFETY: a valid string; the buffer's length is passed.
    let n = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    Ok(buf)
}

/// Runs the check.
pub fn run(dir: &Path, namespace: &str) -> Result<()> {
    let file = dir.join("xattr-check");
    std::fs::write(&file, b"x").context("create the test file")?;
    let p = cpath(&file)?;
    let full = format!("{namespace}.lcow.check");
    let name = CString::new(full.as_str())?;
    let value: Vec<u8> = (0u8..=255).collect();
    set(&p, &name, &value, 0).context("setxattr")?;
    if get(&p, &name).context("getxattr")? != value {
        bail!("getxattr returned other bytes than were set");
    }
    ok(&format!("{full}: setxattr then getxattr gives the same 256 bytes"));
    let names = list(&p).context("listxattr")?;
    if !names.split(|b| *b == 0).any(|n| n == full.as_bytes()) {
        bail!("listxattr does not list {full}");
    }
    ok("listxattr lists it");
    match set(&p, &name, b"y", libc::XATTR_CREATE) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            ok("XATTR_CREATE on an existing name: EEXIST")
        }
        other => bail!("XATTR_CREATE on an existing name gave {other:?}, not EEXIST"),
    }
    set(&p, &name, b"second", libc::XATTR_REPLACE).context("setxattr XATTR_REPLACE")?;
    if get(&p, &name)? != b"second" {
        bail!("the replaced value did not stick");
    }
    ok("XATTR_REPLACE replaces");
    // SAFETY: valid NUL-terminated strings.
    if unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("removexattr");
    }
    match get(&p, &name) {
        Err(e) if e.raw_os_error() == Some(libc::ENODATA) => ok("removed: ENODATA"),
        other => bail!("getxattr after removexattr gave {other:?}, not ENODATA"),
    }
    std::fs::remove_file(&file).context("remove the test file")?;
    println!("PASS xattr");
    Ok(())
}
