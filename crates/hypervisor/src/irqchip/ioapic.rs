//! [`Ioapic`]: an 82093AA-style I/O APIC (version 0x11, 24 pins) in user space.
//!
//! The guest programs it through two 32-bit registers in its MMIO window: `IOREGSEL` (offset
//! 0x00) picks a register and `IOWIN` (0x10) reads or writes it. Register 0 is the id, 1 the
//! version, 2 the arbitration id, and 0x10 + 2n / 0x11 + 2n the low / high half of pin n's
//! redirection entry. A device line is given as asserted or not ([`Ioapic::set_irq`]); the
//! controller answers with the interrupt to inject, if any:
//!
//! - edge-triggered pins deliver on each rising edge while unmasked (an edge while masked is
//!   lost, as on hardware);
//! - level-triggered pins deliver while asserted, unmasked and not awaiting an EOI (remote
//!   IRR); the EOI of their vector ([`Ioapic::end_of_interrupt`]) clears remote IRR and delivers
//!   again if the line is still asserted, as does unmasking an asserted line.
//!
//! Polarity is kept as the guest wrote it; lines are given as asserted or not, as KVM's
//! `KVM_IRQ_LINE` takes them.

/// The I/O APIC's pins (redirection entries).
pub const IOAPIC_NUM_PINS: usize = 24;
/// The size of its MMIO window.
pub const IOAPIC_SIZE: u64 = 0x1000;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;

const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARBITRATION: u8 = 0x02;
const REG_REDIRECTION: u8 = 0x10;
/// Version 0x11, highest redirection entry in bits 16-23.
const VERSION: u32 = 0x11 | ((IOAPIC_NUM_PINS as u32 - 1) << 16);

const VECTOR_MASK: u64 = 0xff;
const DELIVERY_MODE_SHIFT: u32 = 8;
const DEST_LOGICAL: u64 = 1 << 11;
const DELIVERY_STATUS: u64 = 1 << 12;
const REMOTE_IRR: u64 = 1 << 14;
const TRIGGER_LEVEL: u64 = 1 << 15;
const MASKED: u64 = 1 << 16;
const DEST_SHIFT: u32 = 56;
/// Bits the guest cannot write: delivery status and remote IRR.
const READ_ONLY: u64 = DELIVERY_STATUS | REMOTE_IRR;

/// How an interrupt is delivered to the local APICs (redirection entry bits 8-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// To the destination's local APIC(s), at the vector.
    Fixed,
    /// To the lowest-priority processor among the destination.
    LowestPriority,
    /// A system management interrupt.
    Smi,
    /// A non-maskable interrupt (the vector is ignored).
    Nmi,
    /// INIT.
    Init,
    /// External interrupt (8259-compatible): the vector comes from a PIC.
    ExtInt,
    /// A reserved encoding (3 or 6): not delivered.
    Reserved(u8),
}

impl DeliveryMode {
    fn from_bits(bits: u8) -> Self {
        match bits {
            0 => Self::Fixed,
            1 => Self::LowestPriority,
            2 => Self::Smi,
            4 => Self::Nmi,
            5 => Self::Init,
            7 => Self::ExtInt,
            other => Self::Reserved(other),
        }
    }
}

/// One interrupt for the backend to inject (WHP: `WHvRequestInterrupt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The vector.
    pub vector: u8,
    /// How it is delivered.
    pub mode: DeliveryMode,
    /// The destination: an APIC id (physical) or a logical destination set.
    pub destination: u8,
    /// `destination` is logical.
    pub logical: bool,
    /// Level-triggered: the guest's EOI of `vector` must reach
    /// [`Ioapic::end_of_interrupt`].
    pub level: bool,
}

/// The I/O APIC's state (see the module documentation).
#[derive(Debug, Clone)]
pub struct Ioapic {
    id: u32,
    select: u8,
    entries: [u64; IOAPIC_NUM_PINS],
    /// Each pin's line: bit n set while pin n is asserted.
    asserted: u32,
}

impl Default for Ioapic {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Ioapic {
    /// An I/O APIC with APIC id `id`, as after reset: every pin masked.
    pub fn new(id: u8) -> Self {
        Self {
            id: u32::from(id & 0xf) << 24,
            select: 0,
            entries: [MASKED; IOAPIC_NUM_PINS],
            asserted: 0,
        }
    }

    /// Pin `pin`'s redirection entry (for tests and snapshots).
    pub fn entry(&self, pin: usize) -> Option<u64> {
        self.entries.get(pin).copied()
    }

    fn delivery(&self, pin: usize) -> Delivery {
        let e = self.entries[pin];
        Delivery {
            vector: (e & VECTOR_MASK) as u8,
            mode: DeliveryMode::from_bits(((e >> DELIVERY_MODE_SHIFT) & 0x7) as u8),
            destination: (e >> DEST_SHIFT) as u8,
            logical: e & DEST_LOGICAL != 0,
            level: e & TRIGGER_LEVEL != 0,
        }
    }

    /// Delivers pin `pin` if it should fire now (level: asserted, unmasked, no remote IRR).
    fn try_deliver_level(&mut self, pin: usize) -> Option<Delivery> {
        let e = self.entries[pin];
        let asserted = self.asserted & (1 << pin) != 0;
        if e & TRIGGER_LEVEL == 0 || e & MASKED != 0 || e & REMOTE_IRR != 0 || !asserted {
            return None;
        }
        let d = self.delivery(pin);
        if matches!(d.mode, DeliveryMode::Reserved(_)) {
            return None;
        }
        self.entries[pin] |= REMOTE_IRR;
        Some(d)
    }

    /// Sets the line of `pin` (asserted or not); returns the interrupt it raises, if any. Pins
    /// past [`IOAPIC_NUM_PINS`] are ignored.
    pub fn set_irq(&mut self, pin: usize, asserted: bool) -> Option<Delivery> {
        if pin >= IOAPIC_NUM_PINS {
            return None;
        }
        let bit = 1u32 << pin;
        let was = self.asserted & bit != 0;
        if asserted {
            self.asserted |= bit;
        } else {
            self.asserted &= !bit;
        }
        let e = self.entries[pin];
        if e & TRIGGER_LEVEL != 0 {
            return self.try_deliver_level(pin);
        }
        if asserted && !was && e & MASKED == 0 {
            let d = self.delivery(pin);
            if !matches!(d.mode, DeliveryMode::Reserved(_)) {
                return Some(d);
            }
        }
        None
    }

    /// The guest signalled the end of interrupt `vector`: level-triggered pins waiting on it
    /// are released, and those still asserted fire again.
    pub fn end_of_interrupt(&mut self, vector: u8) -> Vec<Delivery> {
        let mut again = Vec::new();
        for pin in 0..IOAPIC_NUM_PINS {
            let e = self.entries[pin];
            if e & REMOTE_IRR != 0 && (e & VECTOR_MASK) as u8 == vector {
                self.entries[pin] &= !REMOTE_IRR;
                again.extend(self.try_deliver_level(pin));
            }
        }
        again
    }

    fn read_register(&self) -> u32 {
        match self.select {
            REG_ID => self.id,
            REG_VERSION => VERSION,
            REG_ARBITRATION => self.id,
            sel if sel >= REG_REDIRECTION => {
                let index = usize::from(sel - REG_REDIRECTION);
                match self.entries.get(index / 2) {
                    Some(e) if index % 2 == 0 => *e as u32,
                    Some(e) => (*e >> 32) as u32,
                    None => 0,
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, value: u32) -> Option<Delivery> {
        match self.select {
            REG_ID => self.id = value & (0xf << 24),
            sel if sel >= REG_REDIRECTION => {
                let index = usize::from(sel - REG_REDIRECTION);
                let pin = index / 2;
                let e = self.entries.get(pin).copied()?;
                let written = if index % 2 == 0 {
                    (e & !0xffff_ffff) | u64::from(value)
                } else {
                    (e & 0xffff_ffff) | (u64::from(value) << 32)
                };
                self.entries[pin] = (written & !READ_ONLY) | (e & READ_ONLY);
                if self.entries[pin] & TRIGGER_LEVEL == 0 {
                    // Remote IRR has no meaning for an edge pin.
                    self.entries[pin] &= !REMOTE_IRR;
                }
                // An asserted level line fires as soon as it is unmasked.
                return self.try_deliver_level(pin);
            }
            // Version and arbitration are read-only.
            _ => {}
        }
        None
    }

    /// A guest read of `data.len()` bytes at `offset` in the MMIO window. Only 32-bit reads of
    /// `IOREGSEL` and `IOWIN` mean anything; other reads return zeros.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if data.len() != 4 {
            return;
        }
        let value = match offset {
            IOREGSEL => u32::from(self.select),
            IOWIN => self.read_register(),
            _ => 0,
        };
        data.copy_from_slice(&value.to_le_bytes());
    }

    /// A guest write of `data` at `offset` in the MMIO window; returns the interrupt it
    /// raises (unmasking an asserted level line). Writes that are not 32 bits wide to
    /// `IOREGSEL` or `IOWIN` are ignored.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) -> Option<Delivery> {
        let value = u32::from_le_bytes(data.try_into().ok()?);
        match offset {
            IOREGSEL => {
                self.select = value as u8;
                None
            }
            IOWIN => self.write_register(value),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_reg(io: &mut Ioapic, reg: u8, value: u32) -> Option<Delivery> {
        io.mmio_write(IOREGSEL, &u32::from(reg).to_le_bytes());
        io.mmio_write(IOWIN, &value.to_le_bytes())
    }

    fn read_reg(io: &mut Ioapic, reg: u8) -> u32 {
        io.mmio_write(IOREGSEL, &u32::from(reg).to_le_bytes());
        let mut data = [0u8; 4];
        io.mmio_read(IOWIN, &mut data);
        u32::from_le_bytes(data)
    }

    /// Programs pin `pin`: `low` is the low half (vector, mode, trigger, mask), `dest` the APIC.
    fn program(io: &mut Ioapic, pin: u8, low: u32, dest: u8) -> Option<Delivery> {
        write_reg(io, REG_REDIRECTION + 2 * pin + 1, u32::from(dest) << 24);
        write_reg(io, REG_REDIRECTION + 2 * pin, low)
    }

    const LEVEL: u32 = 1 << 15;
    const MASK: u32 = 1 << 16;

    #[test]
    fn test_ioapic_reset_every_pin_masked_version_24_pins() {
        let mut io = Ioapic::new(2);
        assert_eq!(read_reg(&mut io, REG_VERSION), 0x0017_0011);
        assert_eq!(read_reg(&mut io, REG_ID), 2 << 24);
        for pin in 0..IOAPIC_NUM_PINS {
            assert_eq!(io.entry(pin), Some(u64::from(MASK)));
        }
        assert_eq!(io.set_irq(4, true), None, "masked: nothing delivered");
    }

    #[test]
    fn test_ioapic_edge_pin_delivers_on_each_rising_edge() {
        let mut io = Ioapic::new(0);
        assert_eq!(program(&mut io, 4, 0x34, 1), None);
        let d = io.set_irq(4, true).unwrap();
        assert_eq!(
            d,
            Delivery {
                vector: 0x34,
                mode: DeliveryMode::Fixed,
                destination: 1,
                logical: false,
                level: false,
            }
        );
        assert_eq!(io.set_irq(4, true), None, "no new edge while held");
        assert_eq!(io.set_irq(4, false), None);
        assert!(io.set_irq(4, true).is_some(), "the next pulse delivers");
    }

    #[test]
    fn test_ioapic_edge_while_masked_is_lost() {
        let mut io = Ioapic::new(0);
        program(&mut io, 3, 0x33 | MASK, 0);
        assert_eq!(io.set_irq(3, true), None);
        io.set_irq(3, false);
        assert_eq!(
            program(&mut io, 3, 0x33, 0),
            None,
            "unmasking replays no edge"
        );
    }

    #[test]
    fn test_ioapic_level_pin_waits_for_eoi_then_fires_again_if_still_asserted() {
        let mut io = Ioapic::new(0);
        program(&mut io, 9, 0x49 | LEVEL, 0);
        let d = io.set_irq(9, true).unwrap();
        assert!(d.level);
        assert_ne!(io.entry(9).unwrap() & REMOTE_IRR, 0);
        assert_eq!(
            io.set_irq(9, true),
            None,
            "remote IRR: not again before the EOI"
        );
        assert_eq!(io.end_of_interrupt(0x40), vec![], "another vector's EOI");
        assert_eq!(io.end_of_interrupt(0x49).len(), 1, "still asserted: again");
        io.set_irq(9, false);
        assert_eq!(io.end_of_interrupt(0x49), vec![], "deasserted: done");
        assert_eq!(io.entry(9).unwrap() & REMOTE_IRR, 0);
    }

    #[test]
    fn test_ioapic_unmasking_asserted_level_line_delivers() {
        let mut io = Ioapic::new(0);
        program(&mut io, 5, 0x45 | LEVEL | MASK, 0);
        assert_eq!(io.set_irq(5, true), None);
        let d = program(&mut io, 5, 0x45 | LEVEL, 0).unwrap();
        assert_eq!(d.vector, 0x45);
    }

    #[test]
    fn test_ioapic_read_only_bits_survive_guest_writes() {
        let mut io = Ioapic::new(0);
        program(&mut io, 2, 0x42 | LEVEL, 0);
        io.set_irq(2, true);
        // The guest rewrites the entry with remote IRR clear: it stays set.
        write_reg(&mut io, REG_REDIRECTION + 4, 0x42 | LEVEL);
        assert_ne!(io.entry(2).unwrap() & REMOTE_IRR, 0);
        assert_eq!(read_reg(&mut io, REG_REDIRECTION + 4) & 0xff, 0x42);
        write_reg(&mut io, REG_VERSION, 0);
        assert_eq!(read_reg(&mut io, REG_VERSION), 0x0017_0011);
    }

    #[test]
    fn test_ioapic_logical_destination_and_modes_decoded() {
        let mut io = Ioapic::new(0);
        // Lowest priority (1), logical, destination set 0x0f.
        program(&mut io, 1, 0x31 | (1 << 8) | (1 << 11), 0x0f);
        let d = io.set_irq(1, true).unwrap();
        assert_eq!(d.mode, DeliveryMode::LowestPriority);
        assert!(d.logical);
        assert_eq!(d.destination, 0x0f);
        // A reserved mode (3) is not delivered.
        program(&mut io, 6, 0x36 | (3 << 8), 0);
        assert_eq!(io.set_irq(6, true), None);
    }

    #[test]
    fn test_ioapic_hostile_accesses_ignored() {
        let mut io = Ioapic::new(0);
        assert_eq!(io.set_irq(IOAPIC_NUM_PINS, true), None);
        assert_eq!(io.set_irq(usize::MAX, true), None);
        // A selector past the last entry reads zero and writes nowhere.
        assert_eq!(write_reg(&mut io, 0xff, u32::MAX), None);
        assert_eq!(read_reg(&mut io, 0xff), 0);
        // Short or odd accesses.
        assert_eq!(io.mmio_write(IOWIN, &[1, 2]), None);
        let mut two = [0xaa; 2];
        io.mmio_read(IOWIN, &mut two);
        assert_eq!(two, [0, 0]);
        assert_eq!(io.mmio_write(0x800, &[0; 4]), None);
    }
}
