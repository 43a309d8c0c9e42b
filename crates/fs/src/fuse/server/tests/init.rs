//! INIT and DESTROY.

use super::*;
use crate::fuse::consts::init_flags::*;
use crate::fuse::server::init::OFFERED;
use crate::linux;

fn init_out(fx: &Fixture, arg: InitIn) -> Result<InitOut, i32> {
    fx.call(0, Operation::Init(arg))
        .map(|b| InitOut::from_bytes(&b).unwrap())
}

#[test]
fn test_init_kernel_offering_everything_gets_offered_set() {
    let fx = Fixture::uninit(Options::default());

    let out = init_out(&fx, init_in(37, KERNEL_FLAGS)).unwrap();

    assert_eq!((out.major, out.minor), (7, 37));
    assert_eq!(u64::from(out.flags), OFFERED);
    assert_eq!(out.flags2, 0);
    for flag in [
        FUSE_POSIX_LOCKS,
        FUSE_FLOCK_LOCKS,
        FUSE_DO_READDIRPLUS,
        FUSE_BIG_WRITES,
        FUSE_ATOMIC_O_TRUNC,
        FUSE_MAX_PAGES,
    ] {
        assert_ne!(u64::from(out.flags) & flag, 0, "{flag:#x} missing");
    }
    for flag in [
        FUSE_EXPORT_SUPPORT,
        FUSE_DONT_MASK,
        FUSE_HANDLE_KILLPRIV,
        FUSE_HANDLE_KILLPRIV_V2,
        FUSE_WRITEBACK_CACHE,
        FUSE_POSIX_ACL,
        FUSE_SETXATTR_EXT,
    ] {
        assert_eq!(u64::from(out.flags) & flag, 0, "{flag:#x} taken");
    }
    assert_eq!(out.max_write, MAX_WRITE);
    assert_eq!(out.max_pages, 256);
    assert_eq!(out.max_readahead, 128 * 1024);
    assert_eq!(out.time_gran, 1);
}

#[test]
fn test_init_takes_only_what_kernel_offers() {
    let fx = Fixture::uninit(Options::default());

    let out = init_out(&fx, init_in(31, FUSE_POSIX_LOCKS | FUSE_WRITEBACK_CACHE)).unwrap();

    assert_eq!(out.minor, 31);
    assert_eq!(u64::from(out.flags), FUSE_POSIX_LOCKS);
}

#[test]
fn test_init_newer_minor_answers_ours() {
    let fx = Fixture::uninit(Options::default());

    let out = init_out(&fx, init_in(99, 0)).unwrap();

    assert_eq!(out.minor, FUSE_KERNEL_MINOR_VERSION);
}

#[test]
fn test_init_newer_major_answers_major_only_then_retry_works() {
    let fx = Fixture::uninit(Options::default());
    let newer = InitIn {
        major: 8,
        ..init_in(0, KERNEL_FLAGS)
    };

    let first = init_out(&fx, newer).unwrap();
    let between = fx.getattr(ROOT);
    let second = init_out(&fx, init_in(37, KERNEL_FLAGS)).unwrap();

    assert_eq!(first.major, 7);
    assert_eq!(first.flags, 0);
    assert_eq!(between, Err(linux::EIO));
    assert_eq!(u64::from(second.flags), OFFERED);
}

#[test]
fn test_init_old_major_or_minor_is_eproto() {
    let fx = Fixture::uninit(Options::default());
    let old_major = InitIn {
        major: 6,
        ..init_in(37, 0)
    };

    assert_eq!(init_out(&fx, old_major), Err(linux::EPROTO));
    assert_eq!(init_out(&fx, init_in(22, 0)), Err(linux::EPROTO));
    assert_eq!(fx.getattr(ROOT), Err(linux::EIO));
}

#[test]
fn test_init_pre_7_36_sixteen_byte_body_accepted() {
    let fx = Fixture::uninit(Options::default());
    let mut raw = Vec::new();
    InHeader {
        len: 56,
        opcode: crate::fuse::consts::opcode::FUSE_INIT,
        unique: 2,
        ..InHeader::default()
    }
    .encode(&mut raw);
    for v in [7u32, 27, 65536, FUSE_POSIX_LOCKS as u32] {
        v.encode(&mut raw);
    }

    let reply = fx.server.handle(&raw).unwrap();

    let out = InitOut::from_bytes(&outcome(&reply, 2).unwrap()).unwrap();
    assert_eq!((out.minor, u64::from(out.flags)), (27, FUSE_POSIX_LOCKS));
}

#[test]
fn test_request_before_init_is_eio() {
    let fx = Fixture::uninit(Options::default());

    assert_eq!(fx.getattr(ROOT), Err(linux::EIO));
    assert_eq!(fx.err(ROOT, Operation::Lookup { name: b"x" }), linux::EIO);
}

#[test]
fn test_init_twice_is_eproto() {
    let fx = Fixture::new();

    assert_eq!(init_out(&fx, init_in(37, KERNEL_FLAGS)), Err(linux::EPROTO));
    assert!(fx.getattr(ROOT).is_ok());
}

#[test]
fn test_init_max_write_option_clamped() {
    let big = Fixture::uninit(Options {
        max_write: 64 << 20,
        ..Options::default()
    });
    let small = Fixture::uninit(Options {
        max_write: 100,
        max_readahead: 4096,
        ..Options::default()
    });

    let big = init_out(&big, init_in(37, KERNEL_FLAGS)).unwrap();
    let small = init_out(&small, init_in(37, KERNEL_FLAGS)).unwrap();

    assert_eq!((big.max_write, big.max_pages), (MAX_WRITE, 256));
    assert_eq!((small.max_write, small.max_pages), (4096, 1));
    assert_eq!(small.max_readahead, 4096);
}

#[test]
fn test_write_over_negotiated_max_write_is_einval() {
    let fx = Fixture::uninit(Options {
        max_write: 4096,
        ..Options::default()
    });
    init_out(&fx, init_in(37, KERNEL_FLAGS)).unwrap();
    let (node, fh) = fx.file_rw("f", b"");

    let res = fx.write(node, fh, 0, &[1u8; 8192]);

    assert_eq!(res, Err(linux::EINVAL));
    assert_eq!(fx.write(node, fh, 0, &[1u8; 4096]), Ok(4096));
}

#[test]
fn test_destroy_ends_session_and_releases_handles() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", b"data");

    let destroyed = fx.call(0, Operation::Destroy);
    let after = fx.getattr(ROOT);
    init_out(&fx, init_in(37, KERNEL_FLAGS)).unwrap();
    let stale_read = fx.read(node, fh, 0, 4);

    assert_eq!(destroyed, Ok(Vec::new()));
    assert_eq!(after, Err(linux::EIO));
    assert_eq!(stale_read, Err(linux::EBADF));
}
