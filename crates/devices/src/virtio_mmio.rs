//! Where virtio-mmio devices live and how the guest learns about them.
//!
//! There is no ACPI and no PCI scan (docs/architecture.md): each virtio device gets a 4 KiB *slot* of
//! guest physical address space in the MMIO gap below 4 GiB and its own IRQ line, and the VMM
//! declares it on the kernel command line as `virtio_mmio.device=4K@0xADDR:IRQ` (the kernel's
//! `CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES`). [`SlotAllocator`] hands out slots in order from a
//! [`SlotLayout`]; the transport and the devices themselves come in later issues.

/// The size of one virtio-mmio slot (the transport's register window).
pub const SLOT_SIZE: u64 = 0x1000;
/// The first slot's guest physical address: inside the x86 MMIO gap (3 GiB – 4 GiB), clear of
/// the IOAPIC, the local APIC and the hypervisor's TSS pages near the top.
pub const DEFAULT_BASE: u64 = 0xd000_0000;
/// The first IRQ line for virtio devices: 0–4 are the PIT, keyboard, cascade and COM ports.
pub const DEFAULT_FIRST_IRQ: u32 = 5;
/// The last IRQ line of the IOAPIC (24 pins).
pub const DEFAULT_LAST_IRQ: u32 = 23;

/// Errors of slot allocation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlotError {
    /// Every slot of the layout is in use.
    #[error("no free virtio-mmio slot (all {count} are in use)")]
    Exhausted {
        /// The number of slots in the layout.
        count: u32,
    },
}

/// The address range and IRQ lines virtio-mmio slots are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLayout {
    /// Guest physical address of slot 0.
    pub base: u64,
    /// Bytes per slot.
    pub slot_size: u64,
    /// IRQ line of slot 0; slot `n` has `first_irq + n`.
    pub first_irq: u32,
    /// How many slots there are.
    pub count: u32,
}

impl Default for SlotLayout {
    fn default() -> Self {
        Self {
            base: DEFAULT_BASE,
            slot_size: SLOT_SIZE,
            first_irq: DEFAULT_FIRST_IRQ,
            count: DEFAULT_LAST_IRQ - DEFAULT_FIRST_IRQ + 1,
        }
    }
}

impl SlotLayout {
    /// Slot `index`, or `None` past the end.
    pub fn slot(&self, index: u32) -> Option<Slot> {
        if index >= self.count {
            return None;
        }
        let addr = self
            .base
            .checked_add(u64::from(index).checked_mul(self.slot_size)?)?;
        Some(Slot {
            index,
            addr,
            size: self.slot_size,
            irq: self.first_irq.checked_add(index)?,
        })
    }

    /// The guest physical range all slots cover: `(base, length)`.
    pub fn range(&self) -> (u64, u64) {
        (self.base, u64::from(self.count) * self.slot_size)
    }
}

/// One virtio-mmio slot: where a device's registers are and which IRQ it raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The slot's position in the layout.
    pub index: u32,
    /// Guest physical address of the register window.
    pub addr: u64,
    /// Size of the register window.
    pub size: u64,
    /// The IRQ line.
    pub irq: u32,
}

impl Slot {
    /// The kernel command-line token that declares this slot:
    /// `virtio_mmio.device=4K@0xd0000000:5`.
    pub fn cmdline_token(&self) -> String {
        format!(
            "virtio_mmio.device={}@{:#x}:{}",
            size_token(self.size),
            self.addr,
            self.irq
        )
    }
}

/// A size as the kernel's `memparse` reads it: `4K`, `1M`, or bytes.
fn size_token(size: u64) -> String {
    const K: u64 = 1024;
    if size != 0 && size % (K * K) == 0 {
        format!("{}M", size / (K * K))
    } else if size != 0 && size % K == 0 {
        format!("{}K", size / K)
    } else {
        size.to_string()
    }
}

/// Hands out the slots of a [`SlotLayout`] in order, and remembers them for the command line.
#[derive(Debug, Clone, Default)]
pub struct SlotAllocator {
    layout: SlotLayout,
    allocated: Vec<Slot>,
}

impl SlotAllocator {
    /// An allocator with no slot in use.
    pub fn new(layout: SlotLayout) -> Self {
        Self {
            layout,
            allocated: Vec::new(),
        }
    }

    /// The layout slots come from.
    pub fn layout(&self) -> &SlotLayout {
        &self.layout
    }

    /// The next free slot.
    pub fn allocate(&mut self) -> Result<Slot, SlotError> {
        let index = u32::try_from(self.allocated.len()).unwrap_or(u32::MAX);
        let slot = self.layout.slot(index).ok_or(SlotError::Exhausted {
            count: self.layout.count,
        })?;
        self.allocated.push(slot);
        Ok(slot)
    }

    /// The slots handed out so far, in order.
    pub fn allocated(&self) -> &[Slot] {
        &self.allocated
    }

    /// One `virtio_mmio.device=` token per allocated slot, in order.
    pub fn cmdline_tokens(&self) -> Vec<String> {
        self.allocated.iter().map(Slot::cmdline_token).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_allocate_slots_consecutive_addresses_and_irqs() {
        let mut slots = SlotAllocator::default();

        let a = slots.allocate().unwrap();
        let b = slots.allocate().unwrap();

        assert_eq!((a.index, a.addr, a.irq), (0, 0xd000_0000, 5));
        assert_eq!((b.index, b.addr, b.irq), (1, 0xd000_1000, 6));
        assert_eq!(slots.allocated(), [a, b]);
    }

    #[test]
    fn test_cmdline_token_kernel_format() {
        let mut slots = SlotAllocator::default();
        slots.allocate().unwrap();
        slots.allocate().unwrap();

        assert_eq!(
            slots.cmdline_tokens(),
            [
                "virtio_mmio.device=4K@0xd0000000:5",
                "virtio_mmio.device=4K@0xd0001000:6"
            ]
        );
    }

    #[test]
    fn test_allocate_past_last_irq_exhausted() {
        let mut slots = SlotAllocator::default();
        for _ in 0..19 {
            slots.allocate().unwrap();
        }

        let last = slots.allocated().last().copied().unwrap();

        assert_eq!(last.irq, DEFAULT_LAST_IRQ);
        assert_eq!(slots.allocate(), Err(SlotError::Exhausted { count: 19 }));
    }

    #[test]
    fn test_default_layout_inside_mmio_gap() {
        let (base, len) = SlotLayout::default().range();
        assert!(base >= 0xc000_0000);
        assert!(base + len <= 0xfec0_0000, "below the ioapic");
    }

    #[test]
    fn test_size_token_units() {
        assert_eq!(size_token(0x1000), "4K");
        assert_eq!(size_token(0x20_0000), "2M");
        assert_eq!(size_token(100), "100");
    }
}
