//! Every request and reply survives encode then decode unchanged.

use super::*;

#[test]
fn test_request_every_op_roundtrips_equal() {
    let ops = sample_ops();
    let opcodes: std::collections::BTreeSet<u32> = ops.iter().map(Operation::opcode).collect();
    // Every opcode of the virtio-fs op set has a sample (43 known ones, two unknown).
    assert_eq!(opcodes.len(), 45);
    for op in ops {
        let req = request(op);
        let buf = encode_request(&req).unwrap();
        let back = decode_request(&buf).unwrap();
        assert_eq!(back.op, req.op);
        assert_eq!(back.header.len as usize, buf.len());
        assert_eq!(back.header.opcode, req.op.opcode());
        assert_eq!(back.header.unique, 7);
        assert_eq!(back.header.nodeid, req.header.nodeid);
        assert_eq!((back.header.uid, back.header.gid), (1000, 1001));
        assert_eq!(back.header.pid, 4242);
        assert!(back.extensions.is_empty());
    }
}

#[test]
fn test_request_every_op_reencodes_identical_bytes() {
    for op in sample_ops() {
        let buf = encode(op);
        let again = encode_request(&decode_request(&buf).unwrap()).unwrap();
        assert_eq!(again, buf);
    }
}

#[test]
fn test_setxattr_extended_layout_roundtrips_flags() {
    let neg = Negotiated {
        setxattr_ext: true,
        ..Negotiated::default()
    };
    let req = request(Operation::Setxattr {
        arg: SetxattrIn {
            size: 2,
            flags: 2,
            setxattr_flags: consts::flags::FUSE_SETXATTR_ACL_KILL_SGID,
            ..Default::default()
        },
        name: b"system.posix_acl_access",
        value: b"ab",
    });
    let buf = encode_request_with(&req, &neg).unwrap();
    assert_eq!(buf.len(), 40 + 16 + 24 + 2);
    assert_eq!(decode_request_with(&buf, &neg).unwrap().op, req.op);
    // Under the compat layout the same bytes misparse into an error or a different value.
    assert_ne!(decode_request(&buf).ok().map(|r| r.op), Some(req.op));
}

#[test]
fn test_init_compat_16_byte_body_decodes_flags2_zero() {
    let mut buf = encode(Operation::Init(InitIn {
        major: 7,
        minor: 31,
        max_readahead: 4096,
        flags: 0xff,
        ..Default::default()
    }));
    buf.truncate(40 + 16);
    set_len(&mut buf, 56);
    let Operation::Init(init) = decode_request(&buf).unwrap().op else {
        panic!("not init");
    };
    assert_eq!(
        (init.major, init.minor, init.flags, init.flags2),
        (7, 31, 0xff, 0)
    );
}

#[test]
fn test_request_with_extensions_splits_them_off() {
    let ext = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
    let req = Request {
        header: header(9),
        op: Operation::Create {
            arg: CreateIn::default(),
            name: b"f",
        },
        extensions: &ext,
    };
    let buf = encode_request(&req).unwrap();
    let back = decode_request(&buf).unwrap();
    assert_eq!(back.header.total_extlen, 2);
    assert_eq!(back.extensions, &ext);
    assert_eq!(back.op, req.op);
}

#[test]
fn test_reply_structs_roundtrip_equal() {
    let entry = EntryOut {
        nodeid: 5,
        generation: 6,
        entry_valid: 7,
        attr_valid: 8,
        entry_valid_nsec: 9,
        attr_valid_nsec: 10,
        attr: attr(),
    };
    let open = OpenOut {
        fh: 11,
        open_flags: 12,
        ..Default::default()
    };
    fn check<T: Wire + PartialEq + std::fmt::Debug>(v: T) {
        let buf = reply_ok(42, &v);
        let reply = decode_reply(&buf).unwrap();
        assert_eq!(reply.header.unique, 42);
        assert_eq!(reply.errno(), None);
        assert_eq!(reply.body.len(), T::SIZE);
        assert_eq!(reply.parse::<T>().unwrap(), v);
    }
    check(entry);
    check(AttrOut {
        attr_valid: 1,
        attr_valid_nsec: 2,
        attr: attr(),
        ..Default::default()
    });
    check(open);
    check(CreateOut { entry, open });
    check(WriteOut {
        size: 3,
        ..Default::default()
    });
    check(StatfsOut {
        blocks: 1,
        bfree: 2,
        bavail: 3,
        files: 4,
        ffree: 5,
        bsize: 6,
        namelen: 255,
        frsize: 8,
        ..Default::default()
    });
    check(GetxattrOut {
        size: 9,
        ..Default::default()
    });
    check(LkOut { lk: lock() });
    check(LseekOut { offset: 1 << 40 });
    check(InitOut {
        major: 7,
        minor: 38,
        max_readahead: 1,
        flags: 2,
        max_background: 3,
        congestion_threshold: 4,
        max_write: 1 << 20,
        time_gran: 1,
        max_pages: 256,
        map_alignment: 12,
        flags2: 5,
        ..Default::default()
    });
}
