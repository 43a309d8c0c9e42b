//! [`LockTable`]: POSIX byte-range locks kept in the server itself, with Linux's semantics, for
//! backends whose host has none to lend (NTFS: `LockFileEx` locks are mandatory, per handle, and
//! neither split nor merge). The table is host-independent and tested on every host.
//!
//! Semantics, as `fcntl(F_SETLK)` on Linux:
//! - a lock belongs to an owner (the guest's `lock_owner`: a process for POSIX locks, an open
//!   file for OFD locks) and covers an inclusive byte range of one node;
//! - locks of one owner never conflict with each other: a new lock replaces the owner's locks
//!   where they overlap (so a read lock inside a write lock splits it in three, and a write lock
//!   over a read lock upgrades it), and touching or overlapping locks of one type merge;
//! - locks of two owners conflict where they overlap and at least one is a write lock;
//! - unlocking a range splits what extends beyond it; releasing an owner ends all its locks.
//!
//! Waiting ([`LockTable::set_wait`]) blocks until no other owner's lock conflicts, is ended at
//! once by [`LockTable::interrupt`] of its [`WaitToken`] (FUSE_INTERRUPT, Tflush), and refuses
//! to wait where the waiter would close a cycle of owners waiting for each other
//! ([`LockError::Deadlock`], `EDEADLK`). The table holds at most [`MAX_LOCKS`] locks (or the
//! limit given to [`LockTable::with_limit`]), so a guest cannot grow it without bound by
//! fragmenting ranges ([`LockError::NoLocks`], `ENOLCK`). Each change costs time linear in the
//! locks of its node, so the bound also bounds the work one request can cause.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The most locks one table holds by default.
pub const MAX_LOCKS: usize = 64 * 1024;

/// A lock's owner (the guest's `lock_owner`; the caller keeps POSIX and OFD owners apart).
pub type Owner = u64;

/// An inclusive byte range; `end == u64::MAX` reaches the end of the file however far it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    /// The first byte.
    pub start: u64,
    /// The last byte.
    pub end: u64,
}

impl Range {
    /// The range of `len` bytes from `start` (`len == 0`: to the end of the file), or `None`
    /// when it would pass the last offset (`EINVAL`).
    pub fn from_start_len(start: u64, len: u64) -> Option<Range> {
        let end = if len == 0 {
            u64::MAX
        } else {
            start.checked_add(len - 1)?
        };
        Some(Range { start, end })
    }

    /// The length in the `fcntl` sense (0: to the end of the file).
    pub fn len(&self) -> u64 {
        if self.end == u64::MAX {
            0
        } else {
            self.end - self.start + 1
        }
    }

    /// Whether the range is empty (never: a range has at least one byte).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Whether the two ranges overlap or touch (so locks of one type over them merge).
    fn adjoins(&self, other: &Range) -> bool {
        self.overlaps(other)
            || self.end.checked_add(1) == Some(other.start)
            || other.end.checked_add(1) == Some(self.start)
    }
}

/// A lock's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Shared (`F_RDLCK`).
    Read,
    /// Exclusive (`F_WRLCK`).
    Write,
}

/// One lock held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Its owner.
    pub owner: Owner,
    /// Its kind.
    pub kind: Kind,
    /// Its bytes.
    pub range: Range,
    /// The guest process that took it (what `F_GETLK` reports).
    pub pid: u32,
}

impl Held {
    fn conflicts(&self, owner: Owner, kind: Kind, range: &Range) -> bool {
        self.owner != owner
            && (self.kind == Kind::Write || kind == Kind::Write)
            && self.range.overlaps(range)
    }
}

/// Why a lock was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Another owner holds a conflicting lock (`EAGAIN`).
    #[error("a conflicting lock is held by another owner")]
    WouldBlock(Held),
    /// Waiting would deadlock (`EDEADLK`).
    #[error("waiting for the lock would deadlock")]
    Deadlock,
    /// The wait was interrupted (`EINTR`).
    #[error("the wait for the lock was interrupted")]
    Interrupted,
    /// The table is full (`ENOLCK`).
    #[error("too many locks")]
    NoLocks,
}

impl LockError {
    /// The Linux errno of the error.
    pub fn errno(&self) -> i32 {
        use crate::linux::{EAGAIN, EDEADLK, EINTR, ENOLCK};
        match self {
            LockError::WouldBlock(_) => EAGAIN,
            LockError::Deadlock => EDEADLK,
            LockError::Interrupted => EINTR,
            LockError::NoLocks => ENOLCK,
        }
    }
}

/// A waiter's handle: [`LockTable::interrupt`] ends its wait with [`LockError::Interrupted`].
#[derive(Debug, Clone, Default)]
pub struct WaitToken(Arc<AtomicBool>);

impl WaitToken {
    /// A fresh token.
    pub fn new() -> Self {
        Self::default()
    }

    fn interrupted(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct State<N> {
    nodes: HashMap<N, Vec<Held>>,
    count: usize,
    limit: usize,
    /// Each waiting owner and the owners it waits for.
    waiting: HashMap<Owner, HashSet<Owner>>,
}

/// The locks of every node of one share (see the module documentation). `N` names a node.
#[derive(Debug)]
pub struct LockTable<N: Eq + Hash + Copy> {
    state: Mutex<State<N>>,
    changed: Condvar,
}

impl<N: Eq + Hash + Copy> Default for LockTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N: Eq + Hash + Copy> LockTable<N> {
    /// An empty table holding at most [`MAX_LOCKS`] locks.
    pub fn new() -> Self {
        Self::with_limit(MAX_LOCKS)
    }

    /// An empty table holding at most `limit` locks.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            state: Mutex::new(State {
                nodes: HashMap::new(),
                count: 0,
                limit,
                waiting: HashMap::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<N>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `F_GETLK`: the first lock of another owner that would conflict with `owner` taking
    /// `kind` over `range` of `node`, or `None`.
    pub fn test(&self, node: N, owner: Owner, kind: Kind, range: Range) -> Option<Held> {
        let state = self.lock();
        first_conflict(state.nodes.get(&node), owner, kind, &range)
    }

    /// `F_SETLK`: takes the lock, or fails at once with the conflict.
    pub fn set(
        &self,
        node: N,
        owner: Owner,
        kind: Kind,
        range: Range,
        pid: u32,
    ) -> Result<(), LockError> {
        let mut state = self.lock();
        if let Some(held) = first_conflict(state.nodes.get(&node), owner, kind, &range) {
            return Err(LockError::WouldBlock(held));
        }
        apply(&mut state, node, owner, Some((kind, pid)), range)?;
        drop(state);
        // A downgrade or a merge may free what a waiter wants.
        self.changed.notify_all();
        Ok(())
    }

    /// `F_SETLKW`: takes the lock, waiting while another owner's conflicts; `token` lets
    /// [`LockTable::interrupt`] end the wait.
    pub fn set_wait(
        &self,
        node: N,
        owner: Owner,
        kind: Kind,
        range: Range,
        pid: u32,
        token: &WaitToken,
    ) -> Result<(), LockError> {
        let mut state = self.lock();
        let result = loop {
            if token.interrupted() {
                break Err(LockError::Interrupted);
            }
            let blockers: HashSet<Owner> = conflicts(state.nodes.get(&node), owner, kind, &range)
                .map(|h| h.owner)
                .collect();
            if blockers.is_empty() {
                break apply(&mut state, node, owner, Some((kind, pid)), range);
            }
            if blockers
                .iter()
                .any(|b| waits_for(&state.waiting, *b, owner))
            {
                break Err(LockError::Deadlock);
            }
            state.waiting.insert(owner, blockers);
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        state.waiting.remove(&owner);
        drop(state);
        self.changed.notify_all();
        result
    }

    /// Ends the wait of `token` (now or when it starts) with [`LockError::Interrupted`].
    pub fn interrupt(&self, token: &WaitToken) {
        token.0.store(true, Ordering::SeqCst);
        // Taking the mutex orders this with a waiter between its check and its wait.
        drop(self.lock());
        self.changed.notify_all();
    }

    /// `F_UNLCK`: ends `owner`'s locks over `range` of `node` (splitting what extends beyond).
    pub fn unlock(&self, node: N, owner: Owner, range: Range) {
        let mut state = self.lock();
        if apply(&mut state, node, owner, None, range).is_err() {
            // Splitting a lock in two at the bound: the whole lock goes instead, so an unlock
            // never fails and never leaves the bytes it names locked.
            let whole: Vec<Range> = state
                .nodes
                .get(&node)
                .into_iter()
                .flatten()
                .filter(|h| h.owner == owner && h.range.overlaps(&range))
                .map(|h| h.range)
                .collect();
            for r in whole {
                // Removing a whole lock shrinks the table: it cannot fail.
                let _ = apply(&mut state, node, owner, None, r);
            }
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Ends every lock of `owner` on `node` (a POSIX owner's `close`).
    pub fn release(&self, node: N, owner: Owner) {
        self.unlock(
            node,
            owner,
            Range {
                start: 0,
                end: u64::MAX,
            },
        );
    }

    /// Ends every lock on `node` (the node is gone).
    pub fn forget(&self, node: N) {
        let mut state = self.lock();
        if let Some(locks) = state.nodes.remove(&node) {
            state.count -= locks.len();
        }
        drop(state);
        self.changed.notify_all();
    }

    /// The locks on `node`, sorted by owner and start (for tests and diagnostics).
    pub fn locks(&self, node: N) -> Vec<Held> {
        let state = self.lock();
        let mut locks = state.nodes.get(&node).cloned().unwrap_or_default();
        locks.sort_by_key(|h| (h.owner, h.range.start));
        locks
    }
}

fn conflicts<'a>(
    locks: Option<&'a Vec<Held>>,
    owner: Owner,
    kind: Kind,
    range: &'a Range,
) -> impl Iterator<Item = &'a Held> + 'a {
    locks
        .into_iter()
        .flatten()
        .filter(move |h| h.conflicts(owner, kind, range))
}

fn first_conflict(
    locks: Option<&Vec<Held>>,
    owner: Owner,
    kind: Kind,
    range: &Range,
) -> Option<Held> {
    conflicts(locks, owner, kind, range)
        .min_by_key(|h| h.range.start)
        .copied()
}

/// Whether `from` waits, directly or through other waiters, for `target`.
fn waits_for(waiting: &HashMap<Owner, HashSet<Owner>>, from: Owner, target: Owner) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(o) = stack.pop() {
        if o == target {
            return true;
        }
        if seen.insert(o) {
            if let Some(next) = waiting.get(&o) {
                stack.extend(next.iter().copied());
            }
        }
    }
    false
}

/// Replaces `owner`'s locks over `range` of `node` with `new` (a kind and pid), or removes them
/// (`None`), splitting what extends beyond and merging `new` with the owner's adjoining locks
/// of its kind. The caller has checked conflicts. A change that would pass the table's limit
/// is refused and leaves the table as it was.
fn apply<N: Eq + Hash + Copy>(
    state: &mut State<N>,
    node: N,
    owner: Owner,
    new: Option<(Kind, u32)>,
    range: Range,
) -> Result<(), LockError> {
    let old: &[Held] = state.nodes.get(&node).map_or(&[], Vec::as_slice);
    let before = old.len();
    let mut kept = Vec::with_capacity(old.len() + 2);
    let mut merged = range;
    for h in old.iter().copied() {
        if h.owner != owner {
            kept.push(h);
            continue;
        }
        let same_kind = new.is_some_and(|(kind, _)| kind == h.kind);
        if same_kind && h.range.adjoins(&merged) {
            merged = Range {
                start: merged.start.min(h.range.start),
                end: merged.end.max(h.range.end),
            };
            continue;
        }
        if !h.range.overlaps(&range) {
            kept.push(h);
            continue;
        }
        // The parts of `h` outside `range` stay.
        if h.range.start < range.start {
            kept.push(Held {
                range: Range {
                    start: h.range.start,
                    end: range.start - 1,
                },
                ..h
            });
        }
        if h.range.end > range.end {
            kept.push(Held {
                range: Range {
                    start: range.end + 1,
                    end: h.range.end,
                },
                ..h
            });
        }
    }
    if let Some((kind, pid)) = new {
        kept.push(Held {
            owner,
            kind,
            range: merged,
            pid,
        });
    }
    let total = state.count - before + kept.len();
    if kept.len() > before && total > state.limit {
        return Err(LockError::NoLocks);
    }
    state.count = total;
    if kept.is_empty() {
        state.nodes.remove(&node);
    } else {
        state.nodes.insert(node, kept);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::thread;
    use std::time::{Duration, Instant};

    use super::*;

    const N: u32 = 1;
    const A: Owner = 10;
    const B: Owner = 20;
    const C: Owner = 30;

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    /// The locks on N as (owner, kind, start, end).
    fn held(t: &LockTable<u32>) -> Vec<(Owner, Kind, u64, u64)> {
        t.locks(N)
            .iter()
            .map(|h| (h.owner, h.kind, h.range.start, h.range.end))
            .collect()
    }

    #[test]
    fn test_range_from_start_len() {
        assert_eq!(Range::from_start_len(10, 5), Some(r(10, 14)));
        assert_eq!(Range::from_start_len(10, 0), Some(r(10, u64::MAX)));
        assert_eq!(
            Range::from_start_len(u64::MAX, 1),
            Some(r(u64::MAX, u64::MAX))
        );
        assert_eq!(Range::from_start_len(u64::MAX, 2), None);
        assert_eq!(r(10, 14).len(), 5);
        assert_eq!(r(10, u64::MAX).len(), 0);
    }

    #[test]
    fn test_other_owners_conflict_unless_both_read() {
        let t = LockTable::new();
        t.set(N, A, Kind::Read, r(0, 99), 1).unwrap();
        t.set(N, B, Kind::Read, r(50, 149), 2).unwrap();
        let err = t.set(N, C, Kind::Write, r(90, 95), 3).unwrap_err();
        let LockError::WouldBlock(h) = err else {
            panic!("{err:?}");
        };
        assert_eq!((h.owner, h.pid), (A, 1), "the first conflict by start");
        assert_eq!(err.errno(), crate::linux::EAGAIN);
        t.set(N, C, Kind::Write, r(150, 200), 3).unwrap();
        assert!(t.test(N, C, Kind::Read, r(0, 10)).is_none());
        assert_eq!(t.test(N, C, Kind::Write, r(0, 10)).unwrap().owner, A);
    }

    #[test]
    fn test_own_locks_never_conflict_and_test_ignores_them() {
        let t = LockTable::new();
        t.set(N, A, Kind::Write, r(0, 99), 1).unwrap();
        t.set(N, A, Kind::Write, r(50, 60), 1).unwrap();
        assert!(t.test(N, A, Kind::Write, r(0, 99)).is_none());
    }

    #[test]
    fn test_read_inside_write_splits_in_three() {
        let t = LockTable::new();
        t.set(N, A, Kind::Write, r(0, 99), 1).unwrap();
        t.set(N, A, Kind::Read, r(40, 59), 1).unwrap();
        let mut got = held(&t);
        got.sort_by_key(|h| h.2);
        assert_eq!(
            got,
            [
                (A, Kind::Write, 0, 39),
                (A, Kind::Read, 40, 59),
                (A, Kind::Write, 60, 99)
            ]
        );
        // B may now read the middle, not the ends.
        assert!(t.test(N, B, Kind::Read, r(40, 59)).is_none());
        assert!(t.test(N, B, Kind::Read, r(39, 40)).is_some());
    }

    #[test]
    fn test_write_over_read_upgrades_and_adjoining_locks_merge() {
        let t = LockTable::new();
        t.set(N, A, Kind::Read, r(0, 9), 1).unwrap();
        t.set(N, A, Kind::Read, r(10, 19), 1).unwrap();
        assert_eq!(held(&t), [(A, Kind::Read, 0, 19)], "touching: merged");
        t.set(N, A, Kind::Write, r(5, 14), 1).unwrap();
        let mut got = held(&t);
        got.sort_by_key(|h| h.2);
        assert_eq!(
            got,
            [
                (A, Kind::Read, 0, 4),
                (A, Kind::Write, 5, 14),
                (A, Kind::Read, 15, 19)
            ]
        );
        t.set(N, A, Kind::Write, r(0, 19), 1).unwrap();
        assert_eq!(held(&t), [(A, Kind::Write, 0, 19)], "upgraded whole");
    }

    #[test]
    fn test_upgrade_refused_while_another_reader_holds() {
        let t = LockTable::new();
        t.set(N, A, Kind::Read, r(0, 9), 1).unwrap();
        t.set(N, B, Kind::Read, r(0, 9), 2).unwrap();
        assert!(matches!(
            t.set(N, A, Kind::Write, r(0, 9), 1),
            Err(LockError::WouldBlock(h)) if h.owner == B
        ));
        assert_eq!(t.locks(N)[0].kind, Kind::Read, "A keeps its read lock");
    }

    #[test]
    fn test_unlock_splits_and_release_ends_the_owner() {
        let t = LockTable::new();
        t.set(N, A, Kind::Write, r(0, u64::MAX), 1).unwrap();
        t.set(N, B, Kind::Read, r(0, 0), 2).unwrap_err();
        t.unlock(N, A, r(100, 199));
        let mut got = held(&t);
        got.sort_by_key(|h| h.2);
        assert_eq!(
            got,
            [(A, Kind::Write, 0, 99), (A, Kind::Write, 200, u64::MAX)]
        );
        t.set(N, B, Kind::Write, r(100, 199), 2).unwrap();
        t.release(N, A);
        assert_eq!(held(&t), [(B, Kind::Write, 100, 199)]);
        t.forget(N);
        assert!(held(&t).is_empty());
    }

    #[test]
    fn test_nodes_are_independent() {
        let t = LockTable::new();
        t.set(1, A, Kind::Write, r(0, 9), 1).unwrap();
        t.set(2, B, Kind::Write, r(0, 9), 2).unwrap();
        assert!(t.test(2, A, Kind::Read, r(0, 0)).is_some());
        assert!(t.test(3, A, Kind::Write, r(0, 0)).is_none());
    }

    #[test]
    fn test_set_wait_returns_when_the_conflict_goes() {
        let t = Arc::new(LockTable::new());
        t.set(N, A, Kind::Write, r(0, 9), 1).unwrap();
        let waiter = {
            let t = t.clone();
            thread::spawn(move || t.set_wait(N, B, Kind::Write, r(5, 5), 2, &WaitToken::new()))
        };
        thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "waits while A holds");
        t.unlock(N, A, r(0, 9));
        waiter.join().unwrap().unwrap();
        assert_eq!(held(&t), [(B, Kind::Write, 5, 5)]);
    }

    #[test]
    fn test_set_wait_interrupted_holds_nothing() {
        let t = Arc::new(LockTable::new());
        t.set(N, A, Kind::Write, r(0, 9), 1).unwrap();
        let token = WaitToken::new();
        let waiter = {
            let (t, token) = (t.clone(), token.clone());
            thread::spawn(move || t.set_wait(N, B, Kind::Read, r(0, 0), 2, &token))
        };
        thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        t.interrupt(&token);
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err, LockError::Interrupted);
        assert_eq!(err.errno(), crate::linux::EINTR);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(held(&t), [(A, Kind::Write, 0, 9)]);
        // A token interrupted before the wait starts ends it at once.
        let t2 = LockTable::new();
        t2.set(N, A, Kind::Write, r(0, 9), 1).unwrap();
        assert_eq!(
            t2.set_wait(N, B, Kind::Write, r(0, 9), 2, &token),
            Err(LockError::Interrupted)
        );
    }

    #[test]
    fn test_set_wait_refuses_a_deadlock() {
        let t = Arc::new(LockTable::new());
        t.set(N, A, Kind::Write, r(0, 9), 1).unwrap();
        t.set(N, B, Kind::Write, r(10, 19), 2).unwrap();
        let a_waits = {
            let t = t.clone();
            thread::spawn(move || t.set_wait(N, A, Kind::Write, r(10, 19), 1, &WaitToken::new()))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !t.lock().waiting.contains_key(&A) {
            assert!(Instant::now() < deadline, "A never waited");
            thread::sleep(Duration::from_millis(5));
        }
        let err = t
            .set_wait(N, B, Kind::Write, r(0, 9), 2, &WaitToken::new())
            .unwrap_err();
        assert_eq!(err, LockError::Deadlock);
        assert_eq!(err.errno(), crate::linux::EDEADLK);
        t.release(N, B);
        a_waits.join().unwrap().unwrap();
    }

    #[test]
    fn test_fragmenting_past_the_bound_is_enolck_and_changes_nothing() {
        const LIMIT: usize = 8;
        let t = LockTable::with_limit(LIMIT);
        // One wide lock, then single bytes of one owner that cannot merge, up to the bound.
        t.set(N, A, Kind::Write, r(0, 99), 1).unwrap();
        for i in 1..LIMIT as u64 {
            t.set(N, A, Kind::Read, r(200 + 2 * i, 200 + 2 * i), 1)
                .unwrap();
        }
        let before = held(&t);
        assert_eq!(before.len(), LIMIT);
        let err = t.set(N, A, Kind::Read, r(1000, 1000), 1).unwrap_err();
        assert_eq!(err, LockError::NoLocks);
        assert_eq!(err.errno(), crate::linux::ENOLCK);
        // A read lock inside the wide write lock would split it in three: refused whole.
        assert_eq!(
            t.set(N, A, Kind::Read, r(40, 59), 1),
            Err(LockError::NoLocks)
        );
        assert_eq!(held(&t), before, "a refused change changes nothing");
        // Another owner is bounded by the same table.
        assert_eq!(
            t.set(N, B, Kind::Read, r(5000, 5000), 2),
            Err(LockError::NoLocks)
        );
        // An unlock that would split at the bound still frees the bytes it names: the whole
        // wide lock goes.
        t.unlock(N, A, r(40, 59));
        assert_eq!(held(&t).len(), LIMIT - 1);
        assert!(t.test(N, B, Kind::Write, r(0, 99)).is_none());
        t.set(N, B, Kind::Write, r(40, 59), 2).unwrap();
        // Merging never needs room: a lock that joins its neighbours shrinks the table.
        t.forget(N);
        t.set(N, A, Kind::Write, r(0, 100), 1).unwrap();
        assert_eq!(t.locks(N).len(), 1);
    }

    #[test]
    fn test_default_bound_is_max_locks() {
        assert_eq!(LockTable::<u32>::new().lock().limit, MAX_LOCKS);
    }
}
