//! Tlopen, Tlcreate, Tread, Twrite, Tfsync.

use super::*;
use crate::linux;
use crate::p9::server::file::open_flags as convert;
use crate::p9::{Data, Tfsync, Tlcreate, Tread, Twrite};

fn read(c: &mut Client, fid: u32, offset: u64, count: u32) -> Vec<u8> {
    match c.ok(Tread { fid, offset, count }) {
        Rmessage::Read(r) => r.data.0,
        other => panic!("{other:?}"),
    }
}

fn write(c: &mut Client, fid: u32, offset: u64, data: &[u8]) -> u32 {
    match c.ok(Twrite {
        fid,
        offset,
        data: Data(data.to_vec()),
    }) {
        Rmessage::Write(w) => w.count,
        other => panic!("{other:?}"),
    }
}

#[test]
fn test_lopen_read_write_roundtrip_reaches_host_file() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"hello world").unwrap();
    c.open_rw(1, &["f"]);

    assert_eq!(read(&mut c, 1, 0, 5), b"hello");
    assert_eq!(write(&mut c, 1, 6, b"there"), 5);
    assert_eq!(read(&mut c, 1, 0, 100), b"hello there");
    assert!(read(&mut c, 1, 100, 10).is_empty());
    c.ok(Tfsync {
        fid: 1,
        datasync: 0,
    });

    assert_eq!(std::fs::read(c.path("f")).unwrap(), b"hello there");
}

#[test]
fn test_lopen_readonly_write_is_refused_ebadf() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.open(1, &["f"], open_flags::RDONLY);

    let errno = c.err(Twrite {
        fid: 1,
        offset: 0,
        data: Data(b"y".to_vec()),
    });

    assert_eq!(errno, linux::EBADF);
}

#[test]
fn test_lopen_trunc_append_flags_are_honoured() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"old contents").unwrap();

    c.open(
        1,
        &["f"],
        open_flags::WRONLY | open_flags::TRUNC | open_flags::APPEND,
    );
    write(&mut c, 1, 0, b"ab");
    write(&mut c, 1, 0, b"cd");

    assert_eq!(std::fs::read(c.path("f")).unwrap(), b"abcd");
}

#[test]
fn test_lopen_opened_fid_again_answers_ebadf() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.open_rw(1, &["f"]);

    let errno = c.err(Tlopen {
        fid: 1,
        flags: open_flags::RDONLY,
    });

    assert_eq!(errno, linux::EBADF);
}

#[test]
fn test_read_unopened_fid_answers_ebadf() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.walk(ROOT, 1, &["f"]);

    let errno = c.err(Tread {
        fid: 1,
        offset: 0,
        count: 1,
    });

    assert_eq!(errno, linux::EBADF);
}

#[test]
fn test_lcreate_new_file_fid_names_open_file() {
    let mut c = Client::new();
    c.walk(ROOT, 1, &[]);

    let reply = c.ok(Tlcreate {
        fid: 1,
        name: name("new"),
        flags: open_flags::RDWR | open_flags::CREATE | open_flags::EXCL,
        mode: 0o640,
        gid: 0,
    });
    let qid = match reply {
        Rmessage::Lcreate(r) => r.qid,
        other => panic!("{other:?}"),
    };
    write(&mut c, 1, 0, b"data");

    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(c.path("new")).unwrap();
    assert_eq!(meta.ino(), qid.path);
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(std::fs::read(c.path("new")).unwrap(), b"data");
    assert_eq!(c.server.refs.len(), 1);
}

#[test]
fn test_lcreate_existing_name_with_excl_answers_eexist() {
    let mut c = Client::new();
    std::fs::write(c.path("f"), b"x").unwrap();
    c.walk(ROOT, 1, &[]);

    let errno = c.err(Tlcreate {
        fid: 1,
        name: name("f"),
        flags: open_flags::RDWR | open_flags::CREATE | open_flags::EXCL,
        mode: 0o644,
        gid: 0,
    });

    assert_eq!(errno, linux::EEXIST);
}

#[test]
fn test_open_flags_p9_values_convert_to_linux_flags() {
    assert_eq!(convert(open_flags::RDONLY).unwrap(), linux::O_RDONLY);
    assert_eq!(
        convert(open_flags::WRONLY | open_flags::TRUNC).unwrap(),
        linux::O_WRONLY | linux::O_TRUNC
    );
    assert_eq!(
        convert(open_flags::RDWR | open_flags::APPEND | open_flags::DIRECTORY).unwrap(),
        linux::O_RDWR | linux::O_APPEND | linux::O_DIRECTORY
    );
    assert_eq!(convert(open_flags::SYNC).unwrap(), linux::O_SYNC);
    assert_eq!(
        convert(open_flags::NOACCESS).unwrap_err().errno(),
        linux::EINVAL
    );
}
