//! [`Bus`]: the map from guest addresses (I/O ports or guest physical addresses) to devices.
//!
//! A VMM keeps one bus for port I/O and one for MMIO. Each device owns a range; an access is
//! dispatched to the device whose range holds it, with the offset inside that range. An access
//! that starts in a range but runs past its end is ignored (reads return all ones) and logged at
//! `debug`: a guest can ask for anything, and nothing it asks may panic the VMM.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// A device on a [`Bus`]. `offset` is relative to the start of the device's range, and
/// `offset + data.len()` never exceeds the range's length.
pub trait BusDevice: Send {
    /// The guest reads `data.len()` bytes at `offset`: fill `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// The guest writes `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A device shared between the bus and its owner.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Errors of building a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    /// The range is empty or its end overflows.
    #[error("invalid range {base:#x}+{len:#x} for {name}")]
    InvalidRange {
        /// The device.
        name: String,
        /// The first address.
        base: u64,
        /// The length.
        len: u64,
    },
    /// The range overlaps a device already on the bus.
    #[error(
        "range {base:#x}+{len:#x} for {name} overlaps {other} at {other_base:#x}+{other_len:#x}"
    )]
    Overlap {
        /// The device being inserted.
        name: String,
        /// Its first address.
        base: u64,
        /// Its length.
        len: u64,
        /// The device already there.
        other: String,
        /// That device's first address.
        other_base: u64,
        /// That device's length.
        other_len: u64,
    },
}

struct Entry {
    len: u64,
    name: String,
    device: SharedDevice,
}

/// Address ranges mapped to devices (see the module documentation).
#[derive(Default)]
pub struct Bus {
    /// Keyed by the first address of each range; ranges never overlap.
    entries: BTreeMap<u64, Entry>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(base, e)| (format!("{base:#x}+{:#x}", e.len), &e.name)),
            )
            .finish()
    }
}

/// What the guest asked for on a bus.
enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `device` at `base .. base + len`, named `name` in logs and errors.
    pub fn insert(
        &mut self,
        name: &str,
        base: u64,
        len: u64,
        device: SharedDevice,
    ) -> Result<(), BusError> {
        let end = base.checked_add(len).filter(|_| len > 0);
        let Some(end) = end else {
            return Err(BusError::InvalidRange {
                name: name.to_owned(),
                base,
                len,
            });
        };
        // The only candidates are the last range starting before `end`.
        if let Some((&other_base, other)) = self.entries.range(..end).next_back() {
            if other_base.saturating_add(other.len) > base {
                return Err(BusError::Overlap {
                    name: name.to_owned(),
                    base,
                    len,
                    other: other.name.clone(),
                    other_base,
                    other_len: other.len,
                });
            }
        }
        self.entries.insert(
            base,
            Entry {
                len,
                name: name.to_owned(),
                device,
            },
        );
        Ok(())
    }

    /// The device whose range holds `addr`, its base and length.
    fn find(&self, addr: u64) -> Option<(u64, &Entry)> {
        let (&base, entry) = self.entries.range(..=addr).next_back()?;
        (addr - base < entry.len).then_some((base, entry))
    }

    /// Whether a device's range holds `addr`.
    pub fn contains(&self, addr: u64) -> bool {
        self.find(addr).is_some()
    }

    /// Dispatches a guest read of `data.len()` bytes at `addr`. Returns `false` when no device
    /// owns `addr` (then `data` is untouched). An access that runs past the device's range is
    /// ignored, reads as all ones and returns `true`.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        self.access(addr, Access::Read(data))
    }

    /// Dispatches a guest write of `data` at `addr`. Returns `false` when no device owns `addr`.
    /// An access that runs past the device's range is ignored and returns `true`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        self.access(addr, Access::Write(data))
    }

    fn access(&self, addr: u64, access: Access<'_>) -> bool {
        let Some((base, entry)) = self.find(addr) else {
            return false;
        };
        let offset = addr - base;
        let size = match &access {
            Access::Read(data) => data.len(),
            Access::Write(data) => data.len(),
        } as u64;
        if size == 0 || offset.saturating_add(size) > entry.len {
            tracing::debug!(
                addr,
                size,
                device = entry.name.as_str(),
                "ignored an access that runs past the device's range"
            );
            if let Access::Read(data) = access {
                data.fill(0xff);
            }
            return true;
        }
        let mut device = entry.device.lock().unwrap_or_else(PoisonError::into_inner);
        match access {
            Access::Read(data) => device.read(offset, data),
            Access::Write(data) => device.write(offset, data),
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Records accesses; reads return the offset in every byte.
    #[derive(Default)]
    struct Recorder {
        log: Vec<(char, u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
            self.log.push(('r', offset, data.to_vec()));
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.log.push(('w', offset, data.to_vec()));
        }
    }

    fn recorder() -> Arc<Mutex<Recorder>> {
        Arc::new(Mutex::new(Recorder::default()))
    }

    #[test]
    fn test_insert_overlapping_range_rejected() {
        let mut bus = Bus::new();
        bus.insert("a", 0x100, 0x10, recorder()).unwrap();

        let inside = bus.insert("b", 0x108, 0x4, recorder());
        let straddle_start = bus.insert("c", 0xf8, 0x10, recorder());
        let cover = bus.insert("d", 0x0, 0x1000, recorder());

        assert!(matches!(inside, Err(BusError::Overlap { ref other, .. }) if other == "a"));
        assert!(matches!(straddle_start, Err(BusError::Overlap { .. })));
        assert!(matches!(cover, Err(BusError::Overlap { .. })));
        assert!(
            bus.insert("e", 0x110, 0x10, recorder()).is_ok(),
            "adjacent above"
        );
        assert!(
            bus.insert("f", 0xf0, 0x10, recorder()).is_ok(),
            "adjacent below"
        );
    }

    #[test]
    fn test_insert_empty_or_overflowing_range_rejected() {
        let mut bus = Bus::new();
        assert!(matches!(
            bus.insert("a", 0x100, 0, recorder()),
            Err(BusError::InvalidRange { .. })
        ));
        assert!(matches!(
            bus.insert("b", u64::MAX, 2, recorder()),
            Err(BusError::InvalidRange { .. })
        ));
    }

    #[test]
    fn test_dispatch_passes_offset_within_range() {
        let mut bus = Bus::new();
        let a = recorder();
        let b = recorder();
        bus.insert("a", 0x3f8, 8, a.clone()).unwrap();
        bus.insert("b", 0xd000_0000, 0x1000, b.clone()).unwrap();
        let mut byte = [0u8; 1];
        let mut word = [0u8; 4];

        assert!(bus.write(0x3f8, &[0x41]));
        assert!(bus.read(0x3fd, &mut byte));
        assert!(bus.read(0xd000_0070, &mut word));

        assert_eq!(byte, [5]);
        assert_eq!(word, [0x70; 4]);
        let a = a.lock().unwrap();
        assert_eq!(a.log, [('w', 0, vec![0x41]), ('r', 5, vec![5])]);
        assert_eq!(b.lock().unwrap().log, [('r', 0x70, vec![0x70; 4])]);
    }

    #[test]
    fn test_dispatch_unmapped_address_not_handled() {
        let mut bus = Bus::new();
        bus.insert("a", 0x3f8, 8, recorder()).unwrap();
        let mut byte = [0x11u8];

        assert!(!bus.read(0x3f7, &mut byte));
        assert!(!bus.read(0x400, &mut byte));
        assert!(!bus.write(0x0, &[1]));

        assert_eq!(byte, [0x11], "untouched");
        assert!(bus.contains(0x3ff));
        assert!(!bus.contains(0x400));
    }

    #[test]
    fn test_dispatch_access_past_range_end_ignored() {
        let mut bus = Bus::new();
        let a = recorder();
        bus.insert("a", 0x60, 5, a.clone()).unwrap();
        let mut word = [0u8; 4];

        assert!(bus.read(0x63, &mut word));
        assert!(bus.write(0x64, &[1, 2]));
        assert!(bus.read(0x60, &mut []));

        assert_eq!(word, [0xff; 4]);
        assert!(a.lock().unwrap().log.is_empty());
    }
}
