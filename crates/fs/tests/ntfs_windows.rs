//! The NTFS backend on the host's real NT calls ([`WinNt`]) over a temporary directory.
//!
//! Under Wine these run what Wine implements (relative opens, I/O, listings, hard links);
//! the cases that need real NTFS — EAs, LX reparse points, POSIX delete and rename,
//! per-directory case sensitivity — are `#[ignore]`d with the reason, and run on a Windows
//! host with `cargo test -p lcow-fs --test ntfs_windows -- --include-ignored` (on an NTFS
//! volume; `LCOW_NTFS_TEST_DIR` picks where, default the temp directory).
#![cfg(windows)]
#![allow(clippy::unwrap_used)]

use lcow_fs::backend::ntfs::sys::windows::WinNt;
use lcow_fs::backend::ntfs::{Config, Ntfs};
use lcow_fs::backend::{Backend, NodeId, ROOT_NODE};
use lcow_fs::linux::*;

/// The backend, then its directory: fields drop in order, so every handle is closed before
/// the directory is removed.
struct Fx {
    fs: Ntfs<WinNt>,
    _dir: tempfile::TempDir,
}

fn fx() -> Fx {
    let base = std::env::var_os("LCOW_NTFS_TEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::TempDir::new_in(base).unwrap();
    let root = WinNt::open_dir(dir.path()).unwrap();
    let fs = Ntfs::new(WinNt::new(), root, Config::default()).unwrap();
    Fx { fs, _dir: dir }
}

fn write_file(fx: &Fx, name: &str, data: &[u8]) -> NodeId {
    let (e, h) = fx
        .fs
        .create(ROOT_NODE, name.as_bytes(), O_RDWR, 0o644, 0, 0)
        .unwrap();
    assert_eq!(fx.fs.write(h, 0, data).unwrap(), data.len());
    fx.fs.release(h).unwrap();
    e.node
}

fn names(fx: &Fx, node: NodeId) -> Vec<Vec<u8>> {
    let h = fx.fs.open(node, O_RDONLY).unwrap();
    let mut out = Vec::new();
    fx.fs
        .readdir(h, 0, &mut |e| {
            out.push(e.name.clone());
            true
        })
        .unwrap();
    fx.fs.release(h).unwrap();
    out.retain(|n| n != b"." && n != b"..");
    out.sort();
    out
}

#[test]
fn test_create_write_read_and_list_through_relative_opens() {
    let fx = fx();
    let node = write_file(&fx, "f", b"hello ntfs");
    let h = fx.fs.open(node, O_RDONLY).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(fx.fs.read(h, 6, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ntfs");
    assert_eq!(fx.fs.read(h, 100, &mut buf).unwrap(), 0, "past the end");
    fx.fs.release(h).unwrap();
    assert_eq!(fx.fs.getattr(node).unwrap().size, 10);
    assert_eq!(fx.fs.lookup(ROOT_NODE, b"f").unwrap().node, node);
    assert_eq!(names(&fx, ROOT_NODE), [b"f".to_vec()]);
}

#[test]
fn test_append_truncate_and_escaped_names() {
    let fx = fx();
    let node = write_file(&fx, "a:b?c", b"abc");
    let h = fx.fs.open(node, O_WRONLY | O_APPEND).unwrap();
    fx.fs.write(h, 0, b"def").unwrap();
    fx.fs.release(h).unwrap();
    assert_eq!(fx.fs.getattr(node).unwrap().size, 6);
    assert_eq!(names(&fx, ROOT_NODE), [b"a:b?c".to_vec()]);
    let h = fx.fs.open(node, O_RDWR | O_TRUNC).unwrap();
    fx.fs.release(h).unwrap();
    assert_eq!(fx.fs.getattr(node).unwrap().size, 0);
}

#[test]
fn test_hard_links_and_directories() {
    let fx = fx();
    let node = write_file(&fx, "a", b"x");
    let d = fx.fs.mkdir(ROOT_NODE, b"d", 0o755, 0, 0).unwrap();
    let l = fx.fs.link(node, d.node, b"b").unwrap();
    assert_eq!(l.attr.ino, fx.fs.getattr(node).unwrap().ino);
    assert_eq!(l.attr.nlink, 2);
    assert_eq!(names(&fx, d.node), [b"b".to_vec()]);
    assert_eq!(
        fx.fs.lookup(ROOT_NODE, b"absent").unwrap_err().errno(),
        ENOENT
    );
    assert_eq!(fx.fs.lookup(ROOT_NODE, b"..").unwrap_err().errno(), EINVAL);
}

#[test]
#[ignore = "needs real NTFS: Wine drops the EAs given to NtCreateFile"]
fn test_metadata_eas_survive_a_fresh_server() {
    let fx = fx();
    let (e, h) = fx
        .fs
        .create(ROOT_NODE, b"owned", O_RDWR, 0o4710, 1234, 5678)
        .unwrap();
    fx.fs.release(h).unwrap();
    let attr = fx.fs.getattr(e.node).unwrap();
    assert_eq!(attr.mode, S_IFREG | 0o4710);
    assert_eq!((attr.uid, attr.gid), (1234, 5678));
    fx.fs.setxattr(e.node, b"user.k", b"v", 0).unwrap();
    assert_eq!(fx.fs.getxattr(e.node, b"user.k").unwrap(), b"v");
}

#[test]
#[ignore = "needs real NTFS: Wine has no LX reparse points"]
fn test_symlinks_and_fifos_are_lx_reparse_points() {
    let fx = fx();
    let l = fx.fs.symlink(ROOT_NODE, b"l", b"../x", 0, 0).unwrap();
    assert_eq!(fx.fs.readlink(l.node).unwrap(), b"../x");
    let p = fx
        .fs
        .mknod(ROOT_NODE, b"p", S_IFIFO | 0o600, 0, 0, 0)
        .unwrap();
    assert_eq!(fx.fs.getattr(p.node).unwrap().mode, S_IFIFO | 0o600);
}

#[test]
fn test_unlink_and_rename_of_closed_files() {
    // The classic calls (Wine, FAT) or the POSIX ones (NTFS): the same for files nobody holds.
    let fx = fx();
    // Nothing holds either file (a classic rename replaces no file that is open).
    let a = write_file(&fx, "a", b"A");
    let b = write_file(&fx, "b", b"B");
    fx.fs.forget(a, 1);
    fx.fs.forget(b, 1);
    fx.fs.rename(ROOT_NODE, b"a", ROOT_NODE, b"b", 0).unwrap();
    assert_eq!(names(&fx, ROOT_NODE), [b"b".to_vec()]);
    let b = fx.fs.lookup(ROOT_NODE, b"b").unwrap();
    assert_eq!(fx.fs.getattr(b.node).unwrap().size, 1);
    fx.fs.unlink(ROOT_NODE, b"b").unwrap();
    // Classically the name goes with the last handle: the guest's lookup holds one.
    fx.fs.forget(b.node, 1);
    assert!(names(&fx, ROOT_NODE).is_empty());
    assert_eq!(fx.fs.unlink(ROOT_NODE, b"b").unwrap_err().errno(), ENOENT);
}

#[test]
#[ignore = "needs real NTFS: Wine has no POSIX delete or rename (STATUS_NOT_IMPLEMENTED)"]
fn test_posix_unlink_and_rename() {
    let fx = fx();
    let node = write_file(&fx, "f", b"data");
    let h = fx.fs.open(node, O_RDONLY).unwrap();
    fx.fs.unlink(ROOT_NODE, b"f").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(fx.fs.read(h, 0, &mut buf).unwrap(), 4);
    write_file(&fx, "f", b"new");
    write_file(&fx, "g", b"g");
    fx.fs.rename(ROOT_NODE, b"g", ROOT_NODE, b"f", 0).unwrap();
    assert_eq!(names(&fx, ROOT_NODE), [b"f".to_vec()]);
}

#[test]
#[ignore = "needs real NTFS: Wine has no per-directory case sensitivity"]
fn test_guest_directories_are_case_sensitive() {
    let fx = fx();
    let d = fx.fs.mkdir(ROOT_NODE, b"cs", 0o755, 0, 0).unwrap();
    for n in [&b"a"[..], b"A"] {
        let (_, h) = fx
            .fs
            .create(d.node, n, O_RDWR | O_EXCL, 0o600, 0, 0)
            .unwrap();
        fx.fs.release(h).unwrap();
    }
    assert_eq!(names(&fx, d.node), [b"A".to_vec(), b"a".to_vec()]);
}
