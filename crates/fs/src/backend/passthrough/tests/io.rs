//! Open files: open flags, read, write, readdir, fsync, fallocate, lseek, copy_file_range.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use super::{errno, Fixture};
use crate::backend::{dtype, Backend, DirEntry, ROOT_NODE};

#[test]
fn test_write_read_roundtrip_at_offsets() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDWR);
    assert_eq!(fx.fs.write(h, 0, b"hello").unwrap(), 5);
    assert_eq!(fx.fs.write(h, 10, b"world").unwrap(), 5);
    let mut buf = [0u8; 32];
    let n = fx.fs.read(h, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello\0\0\0\0\0world");
    assert_eq!(fx.fs.read(h, 100, &mut buf).unwrap(), 0);
}

#[test]
fn test_open_append_writes_at_end() {
    let fx = Fixture::new();
    fx.put("f", b"abc");
    let h = fx.open("f", libc::O_WRONLY | libc::O_APPEND);
    fx.fs.write(h, 0, b"def").unwrap();
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"abcdef");
}

#[test]
fn test_open_trunc_empties_file() {
    let fx = Fixture::new();
    fx.put("f", b"abc");
    fx.open("f", libc::O_WRONLY | libc::O_TRUNC);
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"");
}

#[test]
fn test_open_direct_unaligned_io_still_works() {
    let fx = Fixture::new();
    fx.put("f", b"0123456789");
    let h = fx.open("f", libc::O_RDWR | libc::O_DIRECT);
    let mut buf = [0u8; 3];
    assert_eq!(fx.fs.read(h, 1, &mut buf).unwrap(), 3);
    assert_eq!(&buf, b"123");
    assert_eq!(fx.fs.write(h, 3, b"x").unwrap(), 1);
    assert_eq!(fs::read(fx.share.join("f")).unwrap(), b"012x456789");
}

#[test]
fn test_open_sync_dsync_noatime_accepted() {
    let fx = Fixture::new();
    fx.put("f", b"");
    for flags in [
        libc::O_SYNC,
        libc::O_DSYNC,
        libc::O_NOATIME,
        libc::O_NONBLOCK,
    ] {
        let h = fx.open("f", libc::O_RDWR | flags);
        assert_eq!(fx.fs.write(h, 0, b"x").unwrap(), 1);
        fx.fs.release(h).unwrap();
    }
}

#[test]
fn test_open_symlink_eloop() {
    let fx = Fixture::new();
    fx.put("f", b"");
    std::os::unix::fs::symlink("f", fx.share.join("l")).unwrap();
    let l = fx.root_lookup("l");
    assert_eq!(errno(fx.fs.open(l.node, libc::O_RDONLY)), libc::ELOOP);
}

#[test]
fn test_open_special_files_enxio() {
    let fx = Fixture::new();
    let fifo = fx
        .fs
        .mknod(ROOT_NODE, b"p", libc::S_IFIFO | 0o666, 0, 0, 0)
        .unwrap();
    assert_eq!(errno(fx.fs.open(fifo.node, libc::O_RDONLY)), libc::ENXIO);
    let r = fx.fs.create(ROOT_NODE, b"p", libc::O_RDONLY, 0o644, 0, 0);
    assert_eq!(
        errno(r),
        libc::ENXIO,
        "create over a FIFO neither blocks nor opens it"
    );
}

#[test]
fn test_open_directory_for_write_eisdir() {
    let fx = Fixture::new();
    assert_eq!(errno(fx.fs.open(ROOT_NODE, libc::O_RDWR)), libc::EISDIR);
}

#[test]
fn test_open_bad_access_mode_einval() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let e = fx.root_lookup("f");
    assert_eq!(errno(fx.fs.open(e.node, libc::O_ACCMODE)), libc::EINVAL);
}

#[test]
fn test_write_on_read_only_handle_ebadf() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDONLY);
    assert_eq!(errno(fx.fs.write(h, 0, b"x")), libc::EBADF);
}

fn list(fx: &Fixture, h: u64, offset: u64, max: usize) -> Vec<DirEntry> {
    let mut out = Vec::new();
    fx.fs
        .readdir(h, offset, &mut |e| {
            if out.len() == max {
                return false;
            }
            out.push(e.clone());
            true
        })
        .unwrap();
    out
}

#[test]
fn test_readdir_lists_names_with_dtype() {
    let fx = Fixture::new();
    fx.put("f", b"");
    fs::create_dir(fx.share.join("d")).unwrap();
    std::os::unix::fs::symlink("f", fx.share.join("l")).unwrap();
    let h = fx
        .fs
        .open(ROOT_NODE, libc::O_RDONLY | libc::O_DIRECTORY)
        .unwrap();
    let all = list(&fx, h, 0, usize::MAX);
    let kind = |n: &[u8]| all.iter().find(|e| e.name == n).map(|e| e.kind);
    assert_eq!(kind(b"f"), Some(dtype::REG));
    assert_eq!(kind(b"d"), Some(dtype::DIR));
    assert_eq!(kind(b"l"), Some(dtype::LNK));
    assert_eq!(kind(b"."), Some(dtype::DIR));
    assert_eq!(all.len(), 5);
    let f = all.iter().find(|e| e.name == b"f").unwrap();
    assert_eq!(f.ino, fs::metadata(fx.share.join("f")).unwrap().ino());
}

#[test]
fn test_readdir_resume_from_offset_no_loss_no_duplicate() {
    let fx = Fixture::new();
    for i in 0..50 {
        fx.put(&format!("file{i:02}"), b"");
    }
    let h = fx.fs.open(ROOT_NODE, libc::O_RDONLY).unwrap();
    let full: BTreeSet<Vec<u8>> = list(&fx, h, 0, usize::MAX)
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = list(&fx, h, offset, 7);
        let Some(last) = page.last() else { break };
        offset = last.offset;
        seen.extend(page.into_iter().map(|e| e.name));
    }
    let set: BTreeSet<Vec<u8>> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), set.len(), "no duplicates");
    assert_eq!(set, full);
    assert_eq!(full.len(), 52);
}

#[test]
fn test_readdir_on_file_handle_enotdir() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDONLY);
    let r = fx.fs.readdir(h, 0, &mut |_| true);
    assert_eq!(errno(r), libc::ENOTDIR);
}

#[test]
fn test_fsync_and_fdatasync_succeed() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDWR);
    fx.fs.write(h, 0, b"x").unwrap();
    fx.fs.fsync(h, false).unwrap();
    fx.fs.fsync(h, true).unwrap();
    let d = fx.fs.open(ROOT_NODE, libc::O_RDONLY).unwrap();
    fx.fs.fsync(d, false).unwrap();
}

#[test]
fn test_fallocate_extends_and_punches_hole() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDWR);
    fx.fs.fallocate(h, 0, 0, 1 << 20).unwrap();
    assert_eq!(fs::metadata(fx.share.join("f")).unwrap().len(), 1 << 20);
    fx.fs.write(h, 0, &[1u8; 8192]).unwrap();
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    fx.fs.fallocate(h, punch, 0, 4096).unwrap();
    let mut buf = [9u8; 4];
    fx.fs.read(h, 0, &mut buf).unwrap();
    assert_eq!(buf, [0; 4]);
    assert_eq!(fs::metadata(fx.share.join("f")).unwrap().len(), 1 << 20);
}

#[test]
fn test_lseek_data_and_hole_found() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDWR);
    fx.fs.write(h, 1 << 20, &[1u8; 4096]).unwrap();
    let data = fx.fs.lseek(h, 0, libc::SEEK_DATA).unwrap();
    assert!(data > 0 && data <= 1 << 20, "data at {data}");
    assert_eq!(fx.fs.lseek(h, 0, libc::SEEK_HOLE).unwrap(), 0);
    assert_eq!(fx.fs.lseek(h, 0, libc::SEEK_END).unwrap(), (1 << 20) + 4096);
    assert_eq!(errno(fx.fs.lseek(h, 0, 99)), libc::EINVAL);
    assert_eq!(errno(fx.fs.lseek(h, 2 << 20, libc::SEEK_DATA)), libc::ENXIO);
}

#[test]
fn test_copy_file_range_copies_bytes() {
    let fx = Fixture::new();
    fx.put("a", b"0123456789");
    fx.put("b", b"");
    let a = fx.open("a", libc::O_RDONLY);
    let b = fx.open("b", libc::O_WRONLY);
    assert_eq!(fx.fs.copy_file_range(a, 2, b, 1, 5, 0).unwrap(), 5);
    assert_eq!(fs::read(fx.share.join("b")).unwrap(), b"\x0023456");
}

#[test]
fn test_release_twice_ebadf() {
    let fx = Fixture::new();
    fx.put("f", b"");
    let h = fx.open("f", libc::O_RDONLY);
    fx.fs.release(h).unwrap();
    assert_eq!(errno(fx.fs.release(h)), libc::EBADF);
}
