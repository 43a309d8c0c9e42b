//! [`PicStub`]: the legacy 8259A pair (ports 0x20-0x21 and 0xa0-0xa1), answered but inert.
//!
//! A Linux guest that finds an I/O APIC in its MP table still initializes the 8259s and then
//! masks them. The stub accepts the initialization words, keeps the interrupt mask the guest
//! writes (so it reads back), answers 0 for the request and in-service registers, and never
//! raises an interrupt.

/// The master's command port.
pub const PIC_MASTER_CMD: u16 = 0x20;
/// The master's data port.
pub const PIC_MASTER_DATA: u16 = 0x21;
/// The slave's command port.
pub const PIC_SLAVE_CMD: u16 = 0xa0;
/// The slave's data port.
pub const PIC_SLAVE_DATA: u16 = 0xa1;

/// One 8259A's register state.
#[derive(Debug, Clone, Copy, Default)]
struct Chip {
    mask: u8,
    /// Initialization words still expected after ICW1 (ICW2, ICW3, then ICW4 if asked for).
    init_words_left: u8,
    icw4: bool,
}

impl Chip {
    fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            // ICW1: start initialization; the mask is cleared.
            self.mask = 0;
            self.icw4 = value & 0x01 != 0;
            // ICW2 always; ICW3 unless single mode (bit 1).
            self.init_words_left = if value & 0x02 != 0 { 1 } else { 2 } + u8::from(self.icw4);
        }
        // OCW2 / OCW3 (EOIs, register selection): nothing to keep.
    }

    fn write_data(&mut self, value: u8) {
        if self.init_words_left > 0 {
            self.init_words_left -= 1;
        } else {
            // OCW1: the interrupt mask.
            self.mask = value;
        }
    }
}

/// The two 8259s (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct PicStub {
    master: Chip,
    slave: Chip,
}

impl PicStub {
    /// A pair as after power-on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `port` is one of the four PIC ports.
    pub fn handles(port: u16) -> bool {
        matches!(
            port,
            PIC_MASTER_CMD | PIC_MASTER_DATA | PIC_SLAVE_CMD | PIC_SLAVE_DATA
        )
    }

    /// A guest `in` of one byte from `port`.
    pub fn read(&self, port: u16) -> u8 {
        match port {
            PIC_MASTER_DATA => self.master.mask,
            PIC_SLAVE_DATA => self.slave.mask,
            // IRR or ISR, whichever OCW3 picked: nothing is ever pending or in service.
            _ => 0,
        }
    }

    /// A guest `out` of one byte to `port`.
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            PIC_MASTER_CMD => self.master.write_command(value),
            PIC_MASTER_DATA => self.master.write_data(value),
            PIC_SLAVE_CMD => self.slave.write_command(value),
            PIC_SLAVE_DATA => self.slave.write_data(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pic_linux_init_sequence_then_mask_reads_back() {
        let mut pic = PicStub::new();
        // What Linux's init_8259A writes: ICW1..ICW4 to both chips, then masks.
        for (port, value) in [
            (PIC_MASTER_CMD, 0x11),
            (PIC_MASTER_DATA, 0x30),
            (PIC_MASTER_DATA, 0x04),
            (PIC_MASTER_DATA, 0x01),
            (PIC_SLAVE_CMD, 0x11),
            (PIC_SLAVE_DATA, 0x38),
            (PIC_SLAVE_DATA, 0x02),
            (PIC_SLAVE_DATA, 0x01),
        ] {
            pic.write(port, value);
        }
        assert_eq!(pic.read(PIC_MASTER_DATA), 0, "the ICWs are not the mask");
        pic.write(PIC_MASTER_DATA, 0xfb);
        pic.write(PIC_SLAVE_DATA, 0xff);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0xfb);
        assert_eq!(pic.read(PIC_SLAVE_DATA), 0xff);
        assert_eq!(pic.read(PIC_MASTER_CMD), 0, "nothing pending");
    }

    #[test]
    fn test_pic_single_mode_without_icw4_takes_one_word() {
        let mut pic = PicStub::new();
        pic.write(PIC_MASTER_CMD, 0x12); // ICW1: single, no ICW4
        pic.write(PIC_MASTER_DATA, 0x20); // ICW2
        pic.write(PIC_MASTER_DATA, 0x7f); // OCW1
        assert_eq!(pic.read(PIC_MASTER_DATA), 0x7f);
        assert!(PicStub::handles(0xa1) && !PicStub::handles(0x22));
    }
}
