//! SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR.

use super::*;
use crate::backend::{XATTR_CREATE, XATTR_REPLACE};
use crate::linux;

fn set(fx: &Fixture, node: u64, name: &str, value: &[u8], flags: u32) -> Result<Vec<u8>, i32> {
    fx.call(
        node,
        Operation::Setxattr {
            arg: SetxattrIn {
                size: u32::try_from(value.len()).unwrap(),
                flags,
                ..SetxattrIn::default()
            },
            name: name.as_bytes(),
            value,
        },
    )
}

fn get(fx: &Fixture, node: u64, name: &str, size: u32) -> Result<Vec<u8>, i32> {
    fx.call(
        node,
        Operation::Getxattr {
            arg: GetxattrIn {
                size,
                ..GetxattrIn::default()
            },
            name: name.as_bytes(),
        },
    )
}

fn list(fx: &Fixture, node: u64, size: u32) -> Result<Vec<u8>, i32> {
    fx.call(
        node,
        Operation::Listxattr(GetxattrIn {
            size,
            ..GetxattrIn::default()
        }),
    )
}

fn size_of(body: Vec<u8>) -> u32 {
    GetxattrOut::from_bytes(&body).unwrap().size
}

fn file(fx: &Fixture) -> u64 {
    fx.put("f", b"");
    fx.lookup(ROOT, "f").nodeid
}

#[test]
fn test_setxattr_then_getxattr_returns_value() {
    let fx = Fixture::new();
    let f = file(&fx);

    set(&fx, f, "user.k", b"value", 0).unwrap();
    let value = get(&fx, f, "user.k", 100);

    assert_eq!(value.unwrap(), b"value");
}

#[test]
fn test_getxattr_size_zero_probe_answers_size() {
    let fx = Fixture::new();
    let f = file(&fx);
    set(&fx, f, "user.k", &[9u8; 300], 0).unwrap();

    let probe = get(&fx, f, "user.k", 0).unwrap();
    let exact = get(&fx, f, "user.k", 300).unwrap();

    assert_eq!(size_of(probe), 300);
    assert_eq!(exact, vec![9u8; 300]);
}

#[test]
fn test_getxattr_buffer_too_small_erange_missing_enodata() {
    let fx = Fixture::new();
    let f = file(&fx);
    set(&fx, f, "user.k", b"12345", 0).unwrap();

    assert_eq!(get(&fx, f, "user.k", 4), Err(linux::ERANGE));
    assert_eq!(get(&fx, f, "user.nope", 100), Err(linux::ENODATA));
    assert_eq!(get(&fx, 8888, "user.k", 100), Err(linux::ESTALE));
}

#[test]
fn test_setxattr_create_existing_eexist_replace_missing_enodata() {
    let fx = Fixture::new();
    let f = file(&fx);
    set(&fx, f, "user.k", b"1", XATTR_CREATE).unwrap();

    assert_eq!(
        set(&fx, f, "user.k", b"2", XATTR_CREATE),
        Err(linux::EEXIST)
    );
    assert_eq!(
        set(&fx, f, "user.j", b"2", XATTR_REPLACE),
        Err(linux::ENODATA)
    );
    set(&fx, f, "user.k", b"3", XATTR_REPLACE).unwrap();
    assert_eq!(get(&fx, f, "user.k", 10).unwrap(), b"3");
}

#[test]
fn test_listxattr_probe_exact_and_erange() {
    let fx = Fixture::new();
    let f = file(&fx);
    set(&fx, f, "user.a", b"1", 0).unwrap();
    set(&fx, f, "user.bb", b"2", 0).unwrap();

    let size = size_of(list(&fx, f, 0).unwrap());
    let names = list(&fx, f, size).unwrap();
    let short = list(&fx, f, size - 1);

    let mut parts: Vec<&[u8]> = names.split(|b| *b == 0).filter(|n| !n.is_empty()).collect();
    parts.sort();
    assert_eq!(u32::try_from(names.len()).unwrap(), size);
    assert_eq!(parts, [&b"user.a"[..], &b"user.bb"[..]]);
    assert_eq!(short, Err(linux::ERANGE));
}

#[test]
fn test_removexattr_removes_then_enodata() {
    let fx = Fixture::new();
    let f = file(&fx);
    set(&fx, f, "user.k", b"v", 0).unwrap();
    let remove = || Operation::Removexattr { name: b"user.k" };

    fx.ok_body(f, remove());
    let again = fx.err(f, remove());

    assert_eq!(get(&fx, f, "user.k", 10), Err(linux::ENODATA));
    assert_eq!(again, linux::ENODATA);
}

#[test]
fn test_setxattr_largest_value_round_trips() {
    let fx = Fixture::new();
    let f = file(&fx);
    let value = vec![0x5au8; 4000];

    set(&fx, f, "user.big", &value, 0).unwrap();

    assert_eq!(get(&fx, f, "user.big", u32::MAX).unwrap(), value);
}
