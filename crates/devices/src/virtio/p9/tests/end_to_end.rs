//! Tversion and Tattach through the device into the real 9P2000.L server over a passthrough
//! share of a temporary directory.

use lcow_fs::backend::passthrough::{Config, Passthrough};
use lcow_fs::p9::consts::{qid_type, NOFID, NONUNAME};
use lcow_fs::p9::server::Server;
use lcow_fs::p9::{decode_rmessage, encode_tmessage, Rmessage, Tattach, Tmessage, Tversion};

use crate::virtio::p9::P9;
use crate::virtio::request::testing::{Driver, FEATURES};
use crate::virtio::request::PoolConfig;

fn encode(tag: u16, msg: &Tmessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode_tmessage(tag, msg, &mut out).unwrap();
    out
}

#[test]
fn test_p9_version_and_attach_reach_real_server_over_passthrough() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Passthrough::new(dir.path(), Config::default()).unwrap();
    let (mut dev, worker) = P9::new("root", Server::new(backend), PoolConfig::default()).unwrap();
    let mut d = Driver::start(&mut dev, worker, FEATURES);
    let version = encode(
        0xffff,
        &Tmessage::Version(Tversion {
            msize: 8192,
            version: "9P2000.L".into(),
        }),
    );
    let attach = encode(
        1,
        &Tmessage::Attach(Tattach {
            fid: 0,
            afid: NOFID,
            uname: "root".into(),
            aname: "".into(),
            n_uname: NONUNAME,
        }),
    );

    let rversion = d.roundtrip(0, &[&version[..5], &version[5..]], &[7, 8192 - 7]);
    let rattach = d.roundtrip(0, &[&attach], &[4, 16]);

    match decode_rmessage(&rversion.reply).unwrap() {
        (0xffff, Rmessage::Version(r)) => {
            assert_eq!(r.msize, 8192);
            assert_eq!(r.version.as_bytes(), b"9P2000.L");
        }
        other => panic!("not an Rversion: {other:?}"),
    }
    match decode_rmessage(&rattach.reply).unwrap() {
        (1, Rmessage::Attach(r)) => assert_eq!(r.qid.ty, qid_type::DIR),
        other => panic!("not an Rattach: {other:?}"),
    }
    assert_eq!(dev.handler().fid_count(), 1);
}
