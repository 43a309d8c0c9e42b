//! Gathering requests out of descriptor lists and scattering replies, on mock guest memory.

#![allow(clippy::unwrap_used)]

use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::chain::{gather, scatter, ChainError};
use super::testing::F_WRITE;
use super::{PoolConfig, HEAD_BYTES, MAX_DESCRIPTORS};

/// `(addr, len, flags)` of each descriptor of a chain.
type Descs = &'static [(u64, u32, u16)];

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1_0000)]).unwrap()
}

fn descs(list: &[(u64, u32, u16)]) -> Vec<Descriptor> {
    list.iter()
        .map(|&(addr, len, flags)| Descriptor::new(addr, len, flags, 0))
        .collect()
}

#[test]
fn test_gather_readable_parts_concatenated_writable_recorded() {
    let mem = mem();
    mem.write_slice(b"hel", GuestAddress(0x100)).unwrap();
    mem.write_slice(b"lo", GuestAddress(0x200)).unwrap();

    let chain = gather(
        &mem,
        descs(&[
            (0x100, 3, 0),
            (0x200, 2, 0),
            (0x300, 4, F_WRITE),
            (0x400, 0, F_WRITE),
            (0x500, 6, F_WRITE),
        ]),
        64,
    )
    .unwrap();

    assert_eq!(chain.read_request(&mem).unwrap(), b"hello");
    assert_eq!(chain.head, b"hello");
    assert_eq!(chain.request_len, 5);
    assert_eq!(
        chain.reply_space,
        [(GuestAddress(0x300), 4), (GuestAddress(0x500), 6)]
    );
    assert_eq!(chain.capacity, 10);
}

#[test]
fn test_gather_hostile_chains_refused() {
    let mem = mem();
    let cases: &[(Descs, ChainError)] = &[
        (&[], ChainError::NoDescriptor),
        (&[(0x100, 8, F_WRITE)], ChainError::NoRequest),
        (&[(0x100, 0, 0), (0x200, 8, F_WRITE)], ChainError::NoRequest),
        (
            &[(0x100, 4, 0), (0x200, 8, F_WRITE), (0x300, 4, 0)],
            ChainError::ReadableAfterWritable,
        ),
        (
            &[(0xfff0, 0x20, 0)],
            ChainError::OutsideMemory {
                addr: 0xfff0,
                len: 0x20,
            },
        ),
        (
            &[(0x100, 4, 0), (u64::MAX - 2, 8, F_WRITE)],
            ChainError::OutsideMemory {
                addr: u64::MAX - 2,
                len: 8,
            },
        ),
        (
            &[(0x100, 40, 0), (0x200, 40, 0)],
            ChainError::TooLarge { max: 64 },
        ),
        (
            &[(0x100, u32::MAX, 0)],
            ChainError::OutsideMemory {
                addr: 0x100,
                len: u32::MAX,
            },
        ),
    ];

    for (list, expected) in cases {
        let got = gather(&mem, descs(list), 64);

        assert_eq!(got.as_ref().err(), Some(expected), "{list:?}");
    }
}

#[test]
fn test_gather_copies_only_head_until_served() {
    let mem = mem();
    let body: Vec<u8> = (0..200u8).collect();
    mem.write_slice(&body, GuestAddress(0x100)).unwrap();

    let chain = gather(&mem, descs(&[(0x100, 200, 0), (0x400, 16, F_WRITE)]), 1024).unwrap();
    mem.write_slice(b"late", GuestAddress(0x100 + 100)).unwrap();

    assert_eq!(chain.head, &body[..HEAD_BYTES]);
    let request = chain.read_request(&mem).unwrap();
    assert_eq!(&request[100..104], b"late", "the body is read when served");
}

#[test]
fn test_gather_too_many_descriptors_refused() {
    let mem = mem();
    let many: Vec<Descriptor> = (0..=MAX_DESCRIPTORS)
        .map(|_| Descriptor::new(0x100, 1, 0, 0))
        .collect();

    let got = gather(&mem, many, 1 << 20);

    assert_eq!(got.err(), Some(ChainError::TooManyDescriptors));
}

#[test]
fn test_scatter_reply_split_across_buffers_in_order() {
    let mem = mem();
    let space = [(GuestAddress(0x100), 3), (GuestAddress(0x200), 10)];

    let written = scatter(&mem, &space, b"abcdef");

    assert_eq!(written, Some(6));
    let mut a = [0u8; 3];
    let mut b = [0u8; 3];
    mem.read_slice(&mut a, GuestAddress(0x100)).unwrap();
    mem.read_slice(&mut b, GuestAddress(0x200)).unwrap();
    assert_eq!((&a, &b), (b"abc", b"def"));
}

#[test]
fn test_scatter_reply_beyond_space_refused() {
    let mem = mem();

    assert_eq!(scatter(&mem, &[(GuestAddress(0x100), 2)], b"abc"), None);
    assert_eq!(scatter(&mem, &[(GuestAddress(0xfffe), 4)], b"abc"), None);
}

#[test]
fn test_pool_config_normalized_counts_consistent() {
    let pool = PoolConfig {
        workers: 0,
        max_workers: 0,
        ..PoolConfig::default()
    }
    .normalized();

    assert_eq!((pool.workers, pool.max_workers), (1, 1));
    assert_eq!(PoolConfig::default().normalized(), PoolConfig::default());
}
