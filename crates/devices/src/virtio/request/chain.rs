//! Gathering one request out of a descriptor chain and scattering its reply back into it.
//!
//! The chain's device-readable descriptors hold the request, its device-writable ones receive
//! the reply (virtio 1.2 §2.7.4: every readable descriptor comes before every writable one).
//! Every descriptor is checked against guest memory when the chain is popped. Only the
//! request's first [`HEAD_BYTES`] bytes are copied then (enough to route it and to name it in
//! an error reply); the whole request is copied out once, when a pool thread is about to serve
//! it, so requests waiting for a thread hold no more host memory than their descriptor lists,
//! and the handler never sees guest memory.

use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Why a chain cannot carry a request. The chain is then returned with nothing written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The chain has no descriptor at all (bad head index, unreadable descriptor table).
    #[error("the chain has no descriptor")]
    NoDescriptor,
    /// The chain has no device-readable byte, so there is no request.
    #[error("the chain has no device-readable bytes")]
    NoRequest,
    /// A device-readable descriptor follows a device-writable one.
    #[error("a device-readable descriptor follows a device-writable one")]
    ReadableAfterWritable,
    /// A descriptor's buffer is not entirely inside guest memory.
    #[error("a descriptor of {len} bytes at {addr:#x} is outside guest memory")]
    OutsideMemory {
        /// The buffer's guest address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The chain has more descriptors than [`MAX_DESCRIPTORS`].
    #[error("the chain has more than {MAX_DESCRIPTORS} descriptors")]
    TooManyDescriptors,
    /// The request is larger than the device accepts.
    #[error("the request is larger than {max} bytes")]
    TooLarge {
        /// The largest request accepted.
        max: usize,
    },
}

/// How many bytes of a request are copied when its chain is popped.
pub const HEAD_BYTES: usize = 64;

/// The most descriptors a chain may have (a 1 MiB request or reply in 4 KiB pages takes 256,
/// plus its headers).
pub const MAX_DESCRIPTORS: usize = 1024;

/// A request's place in its chain, and where its reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestChain {
    /// The readable buffers, in chain order, each checked to lie inside guest memory.
    pub readable: Vec<(GuestAddress, u32)>,
    /// Their total size: the request's length.
    pub request_len: usize,
    /// The request's first [`HEAD_BYTES`] bytes (all of it when shorter).
    pub head: Vec<u8>,
    /// The writable buffers, in chain order, each checked to lie inside guest memory.
    pub reply_space: Vec<(GuestAddress, u32)>,
    /// Their total size: the largest reply the chain can take.
    pub capacity: usize,
}

/// Copies the request out of the descriptors of a chain in `mem` (at most `max_request` bytes)
/// and records the writable buffers.
pub fn gather(
    mem: &GuestMemoryMmap,
    chain: impl IntoIterator<Item = Descriptor>,
    max_request: usize,
) -> Result<RequestChain, ChainError> {
    let mut readable = Vec::new();
    let mut request_len = 0usize;
    let mut reply_space = Vec::new();
    let mut capacity = 0usize;
    let mut descriptors = 0usize;
    for desc in chain {
        descriptors += 1;
        if descriptors > MAX_DESCRIPTORS {
            return Err(ChainError::TooManyDescriptors);
        }
        let (addr, len) = (desc.addr(), desc.len());
        let size = usize::try_from(len).map_err(|_| ChainError::TooLarge { max: max_request })?;
        if !GuestMemoryBackend::check_range(mem, addr, size) {
            return Err(ChainError::OutsideMemory { addr: addr.0, len });
        }
        if desc.is_write_only() {
            if size > 0 {
                reply_space.push((addr, len));
                capacity = capacity.saturating_add(size);
            }
            continue;
        }
        if !reply_space.is_empty() {
            return Err(ChainError::ReadableAfterWritable);
        }
        request_len = request_len
            .checked_add(size)
            .filter(|&end| end <= max_request)
            .ok_or(ChainError::TooLarge { max: max_request })?;
        if size > 0 {
            readable.push((addr, len));
        }
    }
    if descriptors == 0 {
        return Err(ChainError::NoDescriptor);
    }
    let Some(&(first_addr, first_len)) = readable.first() else {
        return Err(ChainError::NoRequest);
    };
    let head = read_parts(mem, &readable, request_len.min(HEAD_BYTES)).ok_or(
        ChainError::OutsideMemory {
            addr: first_addr.0,
            len: first_len,
        },
    )?;
    Ok(RequestChain {
        readable,
        request_len,
        head,
        reply_space,
        capacity,
    })
}

impl RequestChain {
    /// Copies the whole request out of guest memory (`None` if memory refused a read).
    pub fn read_request(&self, mem: &GuestMemoryMmap) -> Option<Vec<u8>> {
        read_parts(mem, &self.readable, self.request_len)
    }
}

/// The first `len` bytes of the concatenation of `parts`.
fn read_parts(mem: &GuestMemoryMmap, parts: &[(GuestAddress, u32)], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let mut done = 0;
    for &(addr, size) in parts {
        if done == len {
            break;
        }
        let take = (len - done).min(usize::try_from(size).ok()?);
        mem.read_slice(&mut out[done..done + take], addr).ok()?;
        done += take;
    }
    (done == len).then_some(out)
}

/// Writes `reply` across the writable buffers in order; it must fit their capacity. Returns the
/// bytes written, or `None` when guest memory refused a write (nothing more is written then).
pub fn scatter(
    mem: &GuestMemoryMmap,
    reply_space: &[(GuestAddress, u32)],
    reply: &[u8],
) -> Option<u32> {
    let mut rest = reply;
    for &(addr, len) in reply_space {
        if rest.is_empty() {
            break;
        }
        let take = rest.len().min(usize::try_from(len).ok()?);
        let (now, later) = rest.split_at(take);
        mem.write_slice(now, addr).ok()?;
        rest = later;
    }
    if !rest.is_empty() {
        return None;
    }
    u32::try_from(reply.len()).ok()
}
