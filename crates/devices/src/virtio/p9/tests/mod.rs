//! The virtio-9p device on mock guest memory: a fake driver ([`crate::virtio::request::testing`])
//! posts chains, a fake 9P server answers (a Tlock blocks until released or flushed, as the real
//! server's does), and one test runs Tversion and Tattach into the real `lcow_fs` server over
//! a temporary directory.

#![allow(clippy::unwrap_used)]

mod concurrency;
// Against lcow-fs's Linux passthrough backend.
#[cfg(target_os = "linux")]
mod end_to_end;
mod queue;

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use lcow_fs::p9::consts::msg::{RFLUSH, RLERROR, TFLUSH, TLOCK};

use super::P9Handler;
use crate::virtio::request::testing::WAIT;

/// A framed 9P message.
pub(super) fn msg(ty: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let mut out = ((7 + body.len()) as u32).to_le_bytes().to_vec();
    out.push(ty);
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// `(type, tag, ecode)` of an Rlerror.
pub(super) fn rlerror_of(reply: &[u8]) -> (u8, u16, u32) {
    assert_eq!(reply.len(), 11, "{reply:?}");
    (
        reply[4],
        u16::from_le_bytes([reply[5], reply[6]]),
        u32::from_le_bytes(reply[7..11].try_into().unwrap()),
    )
}

/// The tag of a framed message.
pub(super) fn tag_of(reply: &[u8]) -> u16 {
    u16::from_le_bytes([reply[5], reply[6]])
}

#[derive(Default)]
struct LockState {
    running: HashSet<u16>,
    cancelled: HashSet<u16>,
    released: bool,
}

/// A fake 9P server. Every request is recorded; Tlock blocks until [`Fake::release`] or a
/// Tflush naming it (then it answers Rlerror EINTR before the Rflush); anything else is
/// answered with type + 1, its tag and its own body.
#[derive(Default)]
pub(super) struct Fake {
    pub(super) seen: Mutex<Vec<(u8, u16)>>,
    locks: Mutex<LockState>,
    changed: Condvar,
}

impl Fake {
    pub(super) fn seen(&self) -> Vec<(u8, u16)> {
        self.seen.lock().unwrap().clone()
    }

    /// Lets every blocked Tlock succeed.
    pub(super) fn release(&self) {
        self.locks.lock().unwrap().released = true;
        self.changed.notify_all();
    }

    /// Waits until the Tlock with `tag` is blocked in the handler.
    pub(super) fn wait_blocked(&self, tag: u16) {
        let deadline = Instant::now() + WAIT;
        let mut locks = self.locks.lock().unwrap();
        while !locks.running.contains(&tag) {
            assert!(Instant::now() < deadline, "tlock {tag} never blocked");
            locks = self.changed.wait_timeout(locks, WAIT).unwrap().0;
        }
    }
}

impl P9Handler for Fake {
    fn handle_and_send(&self, request: &[u8], send: &mut dyn FnMut(Vec<u8>)) {
        let (ty, tag) = (request[4], tag_of(request));
        self.seen.lock().unwrap().push((ty, tag));
        match ty {
            TLOCK => {
                let mut locks = self.locks.lock().unwrap();
                locks.running.insert(tag);
                self.changed.notify_all();
                while !locks.released && !locks.cancelled.contains(&tag) {
                    locks = self.changed.wait(locks).unwrap();
                }
                let reply = if locks.cancelled.remove(&tag) {
                    msg(RLERROR, tag, &(libc::EINTR as u32).to_le_bytes())
                } else {
                    msg(TLOCK + 1, tag, &[0])
                };
                drop(locks);
                send(reply);
                self.locks.lock().unwrap().running.remove(&tag);
                self.changed.notify_all();
            }
            TFLUSH => {
                let oldtag = u16::from_le_bytes([request[7], request[8]]);
                let mut locks = self.locks.lock().unwrap();
                if locks.running.contains(&oldtag) {
                    locks.cancelled.insert(oldtag);
                    self.changed.notify_all();
                    while locks.running.contains(&oldtag) {
                        locks = self.changed.wait(locks).unwrap();
                    }
                }
                drop(locks);
                send(msg(RFLUSH, tag, &[]));
            }
            _ => send(msg(ty + 1, tag, &request[7..])),
        }
    }
}

/// A shared fake, so tests keep a handle on it.
pub(super) fn fake() -> Arc<Fake> {
    Arc::new(Fake::default())
}
