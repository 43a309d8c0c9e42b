//! Hostile requests: nothing a guest sends panics, and a malformed request is never answered
//! with success.

use super::*;
use crate::fuse::consts::opcode;
use crate::linux;

fn raw_header(opcode: u32, unique: u64, body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    InHeader {
        len: u32::try_from(InHeader::SIZE + body.len()).unwrap(),
        opcode,
        unique,
        nodeid: ROOT,
        ..InHeader::default()
    }
    .encode(&mut buf);
    buf.extend_from_slice(body);
    buf
}

/// One well-formed request of many kinds, each about the root or handle 1.
fn samples(fx: &Fixture) -> Vec<Vec<u8>> {
    let read = ReadIn {
        fh: 1,
        size: 4096,
        ..ReadIn::default()
    };
    let ops = vec![
        Operation::Lookup { name: b"f" },
        Operation::Getattr(GetattrIn::default()),
        Operation::Setattr(SetattrIn {
            valid: 1,
            mode: 0o644,
            ..SetattrIn::default()
        }),
        Operation::Symlink {
            name: b"l",
            target: b"t",
        },
        Operation::Mkdir {
            arg: MkdirIn {
                mode: 0o755,
                umask: 0,
            },
            name: b"d",
        },
        Operation::Rename2 {
            arg: Rename2In {
                newdir: ROOT,
                flags: 1,
                ..Rename2In::default()
            },
            old: b"a",
            new: b"b",
        },
        Operation::Open(OpenIn::default()),
        Operation::Read(read),
        Operation::Readdirplus(read),
        Operation::Write {
            arg: WriteIn {
                fh: 1,
                size: 3,
                ..WriteIn::default()
            },
            data: b"abc",
        },
        Operation::Setxattr {
            arg: SetxattrIn {
                size: 1,
                ..SetxattrIn::default()
            },
            name: b"user.x",
            value: b"1",
        },
        Operation::Setlkw(LkIn {
            fh: 1,
            ..LkIn::default()
        }),
        Operation::Forget(ForgetIn { nlookup: 1 }),
        Operation::BatchForget(vec![ForgetOne {
            nodeid: 5,
            nlookup: 1,
        }]),
        Operation::Interrupt(InterruptIn { unique: 9 }),
        Operation::Init(init_in(37, KERNEL_FLAGS)),
        Operation::CopyFileRange(CopyFileRangeIn::default()),
    ];
    ops.into_iter()
        .map(|op| {
            encode_request(&Request {
                header: fx.header(ROOT),
                op,
                extensions: &[],
            })
            .unwrap()
        })
        .collect()
}

/// Whether a reply, if any, is well formed and not a success.
fn assert_no_success(reply: Option<Vec<u8>>, what: &str) {
    if let Some(reply) = reply {
        let r = decode_reply(&reply).unwrap();
        assert!(
            r.errno().is_some(),
            "{what}: success for a malformed request"
        );
    }
}

#[test]
fn test_unknown_and_unsupported_opcodes_are_enosys() {
    let fx = Fixture::new();

    for op in [
        1000,
        opcode::FUSE_IOCTL,
        opcode::FUSE_BMAP,
        opcode::FUSE_SETUPMAPPING,
    ] {
        let reply = fx.server.handle(&raw_header(op, 77, &[1, 2, 3])).unwrap();
        assert_eq!(outcome(&reply, 77), Err(linux::ENOSYS), "opcode {op}");
    }
    assert_eq!(
        fx.err(ROOT, Operation::Syncfs(SyncfsIn::default())),
        linux::ENOSYS
    );
}

#[test]
fn test_too_short_for_unique_has_no_reply() {
    let fx = Fixture::new();
    let full = raw_header(opcode::FUSE_GETATTR, 5, &[0; 16]);

    for cut in 0..16 {
        assert!(fx.server.handle(&full[..cut]).is_none(), "cut at {cut}");
    }
}

#[test]
fn test_short_header_with_unique_is_einval() {
    let fx = Fixture::new();
    let full = raw_header(opcode::FUSE_GETATTR, 5, &[0; 16]);

    let reply = fx.server.handle(&full[..20]).unwrap();

    assert_eq!(outcome(&reply, 5), Err(linux::EINVAL));
}

#[test]
fn test_every_truncation_of_every_sample_is_never_success() {
    let fx = Fixture::new();
    fx.put("f", b"abc");

    for req in samples(&fx) {
        let op = u32::from_le_bytes(req[4..8].try_into().unwrap());
        for cut in 0..req.len() {
            // As cut, with len still claiming the whole request.
            assert_no_success(fx.server.handle(&req[..cut]), &format!("op {op} cut {cut}"));
            // As cut, with len rewritten to agree (the arguments themselves are short).
            if cut >= InHeader::SIZE && !(op == opcode::FUSE_INIT && cut == InHeader::SIZE + 16) {
                let mut short = req[..cut].to_vec();
                short[..4].copy_from_slice(&u32::try_from(cut).unwrap().to_le_bytes());
                let what = format!("op {op} cut {cut}, len agreeing");
                assert_no_success(fx.server.handle(&short), &what);
            }
        }
    }
}

#[test]
fn test_truncated_forget_and_interrupt_have_no_reply() {
    let fx = Fixture::new();

    for op in [
        opcode::FUSE_FORGET,
        opcode::FUSE_BATCH_FORGET,
        opcode::FUSE_INTERRUPT,
    ] {
        let req = raw_header(op, 9, &[1, 2, 3]);
        assert!(fx.server.handle(&req).is_none(), "opcode {op}");
    }
}

#[test]
fn test_length_field_lying_is_error_reply() {
    let fx = Fixture::new();
    let mut req = raw_header(opcode::FUSE_GETATTR, 11, &[0; 16]);
    req[..4].copy_from_slice(&1000u32.to_le_bytes());

    let reply = fx.server.handle(&req).unwrap();

    assert_eq!(outcome(&reply, 11), Err(linux::EINVAL));
}

#[test]
fn test_huge_read_size_capped_at_max_read() {
    let fx = Fixture::new();
    let (node, fh) = fx.file_rw("f", &vec![1u8; (MAX_WRITE as usize) * 2]);

    let data = fx.read(node, fh, 0, u32::MAX).unwrap();

    assert_eq!(data.len(), MAX_WRITE as usize);
}

#[test]
fn test_huge_readdir_size_is_bounded_and_works() {
    let fx = Fixture::new();
    let out: OpenOut = fx.ok(ROOT, Operation::Opendir(OpenIn::default()));

    let body = fx.ok_body(
        ROOT,
        Operation::Readdirplus(ReadIn {
            fh: out.fh,
            size: u32::MAX,
            ..ReadIn::default()
        }),
    );

    assert_eq!(crate::fuse::parse_direntplus(&body).unwrap().len(), 2);
}

#[test]
fn test_wild_nodeids_and_handles_are_errors() {
    let fx = Fixture::new();

    for node in [0, 2, u64::MAX] {
        assert_eq!(fx.getattr(node), Err(linux::ESTALE), "node {node}");
        assert!(fx.call(node, Operation::Lookup { name: b"x" }).is_err());
        assert!(fx.call(node, Operation::Readlink).is_err());
    }
    assert_eq!(fx.read(ROOT, u64::MAX, 0, 10), Err(linux::EBADF));
    assert_eq!(fx.release(ROOT, 0), Err(linux::EBADF));
}

#[test]
fn test_dot_names_refused_by_backend() {
    let fx = Fixture::new();

    assert_eq!(
        fx.err(ROOT, Operation::Lookup { name: b"." }),
        linux::EINVAL
    );
    assert_eq!(
        fx.err(ROOT, Operation::Lookup { name: b".." }),
        linux::EINVAL
    );
    assert_eq!(
        fx.err(ROOT, Operation::Lookup { name: b"a/b" }),
        linux::EINVAL
    );
    assert_eq!(
        fx.err(ROOT, Operation::Unlink { name: b".." }),
        linux::EINVAL
    );
}

#[test]
fn test_random_bytes_never_panic() {
    let fx = Fixture::new();
    fx.put("f", b"abc");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };

    for _ in 0..3000 {
        let len = usize::try_from(next() % 200).unwrap();
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if buf.len() >= InHeader::SIZE {
            // Mostly plausible headers: agreeing length, a real opcode.
            buf[..4].copy_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
            let op = u32::try_from(next() % 52).unwrap();
            buf[4..8].copy_from_slice(&op.to_le_bytes());
            buf[16..24].copy_from_slice(&(next() % 4).to_le_bytes());
        }
        if let Some(reply) = fx.server.handle(&buf) {
            decode_reply(&reply).unwrap();
        }
    }
}
