//! A minimal i8042 PS/2 keyboard controller at ports 0x60 (data) and 0x64 (status/command).
//!
//! It exists for two reasons: a guest reboots by pulsing the CPU reset line (command 0xfe on
//! port 0x64, what Linux's `reboot=k` does), which this device reports through its reset
//! callback; and Linux's i8042 and atkbd drivers probe the controller at boot, so every command
//! they send is answered at once (no PS/2 mouse, a keyboard that acknowledges everything and
//! never types) instead of leaving them to wait for timeouts. The guest's ports are decoded as a
//! range of [`I8042_PORTS`] starting at [`I8042_BASE`]; offsets 1–3 (ports 0x61–0x63) are not
//! ours and read as all ones.

use std::collections::VecDeque;

use crate::bus::BusDevice;
use crate::IrqTrigger;

/// The first port of the range this device decodes (the data port).
pub const I8042_BASE: u64 = 0x60;
/// The number of ports from [`I8042_BASE`] up to and including the command port 0x64.
pub const I8042_PORTS: u64 = 5;
/// The IRQ line of the keyboard.
pub const KBD_IRQ: u32 = 1;

const DATA_OFFSET: u64 = 0;
const COMMAND_OFFSET: u64 = 4;

/// Status register bits.
const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM_FLAG: u8 = 0x04;
const STATUS_LAST_WAS_COMMAND: u8 = 0x08;
/// The keyboard is not inhibited (no key lock).
const STATUS_UNLOCKED: u8 = 0x10;

/// Controller configuration byte bits.
const CTR_KBD_INT: u8 = 0x01;
const CTR_KBD_DISABLED: u8 = 0x10;
const CTR_AUX_DISABLED: u8 = 0x20;
/// Keyboard interrupt on, system flag, aux port disabled, scancode translation.
const CTR_DEFAULT: u8 = 0x65;

/// Controller commands (port 0x64).
const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_AUX_DISABLE: u8 = 0xa7;
const CMD_AUX_ENABLE: u8 = 0xa8;
const CMD_AUX_TEST: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_KBD_DISABLE: u8 = 0xad;
const CMD_KBD_ENABLE: u8 = 0xae;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
const CMD_WRITE_KBD_BUFFER: u8 = 0xd2;
const CMD_WRITE_AUX_BUFFER: u8 = 0xd3;
const CMD_WRITE_AUX: u8 = 0xd4;
/// 0xf0–0xff pulse output port lines low for 6 µs; bit 0 clear pulses the CPU reset line.
const CMD_PULSE_FIRST: u8 = 0xf0;

/// Answers.
const SELF_TEST_OK: u8 = 0x55;
const PORT_TEST_OK: u8 = 0x00;
/// "Clock line stuck low": tells Linux there is no aux (mouse) port.
const AUX_TEST_ABSENT: u8 = 0x01;
const KBD_ACK: u8 = 0xfa;
const KBD_RESET_OK: u8 = 0xaa;
const KBD_CMD_RESET: u8 = 0xff;
const KBD_CMD_GET_ID: u8 = 0xf2;
/// An MF2 keyboard.
const KBD_ID: [u8; 2] = [0xab, 0x83];

/// Output port: bit 0 clear holds the CPU in reset; bit 1 is the A20 gate.
const OUTPUT_PORT_DEFAULT: u8 = 0x03;
const OUTPUT_PORT_RESET_RELEASED: u8 = 0x01;

/// The controller's output buffer holds at most this many bytes (Linux flushes up to 16).
const QUEUE_LIMIT: usize = 16;

/// The i8042 controller (see the module documentation).
pub struct I8042Device {
    ctr: u8,
    output_port: u8,
    last_was_command: bool,
    /// A controller command that takes a data byte, waiting for it on port 0x60.
    pending: Option<u8>,
    output: VecDeque<u8>,
    irq: Option<IrqTrigger>,
    on_reset: Box<dyn FnMut() + Send>,
}

impl std::fmt::Debug for I8042Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8042Device")
            .field("ctr", &self.ctr)
            .field("pending", &self.pending)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl I8042Device {
    /// A controller that calls `on_reset` when the guest pulses the CPU reset line and, if
    /// `irq` is given, raises it when the keyboard has a byte for the guest.
    pub fn new(irq: Option<IrqTrigger>, on_reset: Box<dyn FnMut() + Send>) -> Self {
        Self {
            ctr: CTR_DEFAULT,
            output_port: OUTPUT_PORT_DEFAULT,
            last_was_command: false,
            pending: None,
            output: VecDeque::new(),
            irq,
            on_reset,
        }
    }

    /// The keyboard interrupt line, if any, to register with the hypervisor.
    pub fn irq(&self) -> Option<&IrqTrigger> {
        self.irq.as_ref()
    }

    fn status(&self) -> u8 {
        let mut status = STATUS_SYSTEM_FLAG | STATUS_UNLOCKED;
        if !self.output.is_empty() {
            status |= STATUS_OUTPUT_FULL;
        }
        if self.last_was_command {
            status |= STATUS_LAST_WAS_COMMAND;
        }
        status
    }

    /// A controller answer replaces whatever the output buffer held.
    fn answer(&mut self, byte: u8) {
        self.output.clear();
        self.output.push_back(byte);
    }

    /// Bytes from the keyboard: queued, with an interrupt if the guest enabled it.
    fn keyboard_sends(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.output.len() < QUEUE_LIMIT {
                self.output.push_back(b);
            }
        }
        self.interrupt();
    }

    fn interrupt(&self) {
        if self.output.is_empty() || self.ctr & CTR_KBD_INT == 0 || self.ctr & CTR_KBD_DISABLED != 0
        {
            return;
        }
        if let Some(irq) = &self.irq {
            if let Err(e) = irq.trigger() {
                tracing::debug!(error = %e, "i8042 interrupt failed");
            }
        }
    }

    fn reset(&mut self) {
        tracing::debug!("i8042: the guest pulsed the cpu reset line");
        (self.on_reset)();
    }

    fn command(&mut self, cmd: u8) {
        self.pending = None;
        match cmd {
            CMD_READ_CTR => self.answer(self.ctr),
            CMD_AUX_DISABLE => self.ctr |= CTR_AUX_DISABLED,
            CMD_AUX_ENABLE => self.ctr &= !CTR_AUX_DISABLED,
            CMD_AUX_TEST => self.answer(AUX_TEST_ABSENT),
            CMD_SELF_TEST => self.answer(SELF_TEST_OK),
            CMD_KBD_TEST => self.answer(PORT_TEST_OK),
            CMD_KBD_DISABLE => self.ctr |= CTR_KBD_DISABLED,
            CMD_KBD_ENABLE => {
                self.ctr &= !CTR_KBD_DISABLED;
                self.interrupt();
            }
            CMD_READ_OUTPUT_PORT => self.answer(self.output_port),
            CMD_WRITE_CTR
            | CMD_WRITE_OUTPUT_PORT
            | CMD_WRITE_KBD_BUFFER
            | CMD_WRITE_AUX_BUFFER
            | CMD_WRITE_AUX => self.pending = Some(cmd),
            c if c >= CMD_PULSE_FIRST && c & 1 == 0 => self.reset(),
            c if c >= CMD_PULSE_FIRST => {}
            other => tracing::debug!(command = other, "ignored an unknown i8042 command"),
        }
    }

    fn data(&mut self, value: u8) {
        match self.pending.take() {
            Some(CMD_WRITE_CTR) => {
                self.ctr = value;
                self.interrupt();
            }
            Some(CMD_WRITE_OUTPUT_PORT) => {
                self.output_port = value;
                if value & OUTPUT_PORT_RESET_RELEASED == 0 {
                    self.reset();
                }
            }
            Some(CMD_WRITE_KBD_BUFFER) => self.keyboard_sends(&[value]),
            // No aux device: the loop-back byte comes back as keyboard data, which Linux reads
            // as "no aux port" without waiting for a timeout.
            Some(CMD_WRITE_AUX_BUFFER) => self.answer(value),
            Some(_) => {}
            // A byte for the keyboard itself: a command or a command's parameter. The keyboard
            // acknowledges everything; reset and identify also answer.
            None => match value {
                KBD_CMD_RESET => self.keyboard_sends(&[KBD_ACK, KBD_RESET_OK]),
                KBD_CMD_GET_ID => {
                    self.keyboard_sends(&[KBD_ACK, KBD_ID[0], KBD_ID[1]]);
                }
                _ => self.keyboard_sends(&[KBD_ACK]),
            },
        }
    }
}

impl BusDevice for I8042Device {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match (offset, data.len()) {
            (COMMAND_OFFSET, 1) => self.status(),
            (DATA_OFFSET, 1) => {
                let value = self.output.pop_front().unwrap_or(0);
                // The next queued byte raises a new edge.
                self.interrupt();
                value
            }
            _ => {
                tracing::debug!(offset, size = data.len(), "ignored an i8042 read");
                data.fill(0xff);
                return;
            }
        };
        data[0] = value;
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match (offset, data) {
            (COMMAND_OFFSET, &[cmd]) => {
                self.last_was_command = true;
                self.command(cmd);
            }
            (DATA_OFFSET, &[value]) => {
                self.last_was_command = false;
                self.data(value);
            }
            _ => tracing::debug!(offset, size = data.len(), "ignored an i8042 write"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    fn device() -> (I8042Device, Arc<AtomicUsize>) {
        let resets = Arc::new(AtomicUsize::new(0));
        let counter = resets.clone();
        let dev = I8042Device::new(
            Some(IrqTrigger::new().unwrap()),
            Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        (dev, resets)
    }

    fn inb(dev: &mut I8042Device, offset: u64) -> u8 {
        let mut b = [0u8];
        dev.read(offset, &mut b);
        b[0]
    }

    #[test]
    fn test_i8042_reset_command_reports_reset() {
        let (mut dev, resets) = device();

        dev.write(COMMAND_OFFSET, &[0xfe]);

        assert_eq!(resets.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn test_i8042_output_port_reset_bit_cleared_reports_reset() {
        let (mut dev, resets) = device();

        dev.write(COMMAND_OFFSET, &[CMD_WRITE_OUTPUT_PORT]);
        dev.write(DATA_OFFSET, &[0x02]);

        assert_eq!(resets.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn test_i8042_status_idle_is_sane() {
        let (mut dev, resets) = device();

        let status = inb(&mut dev, COMMAND_OFFSET);
        let data = inb(&mut dev, DATA_OFFSET);

        assert_eq!(status & STATUS_OUTPUT_FULL, 0, "nothing to read");
        assert_eq!(status & 0x02, 0, "input buffer empty: the guest may write");
        assert_eq!(data, 0);
        assert_eq!(resets.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn test_i8042_ctr_read_and_write_round_trip() {
        let (mut dev, _) = device();

        dev.write(COMMAND_OFFSET, &[CMD_READ_CTR]);
        let full = inb(&mut dev, COMMAND_OFFSET) & STATUS_OUTPUT_FULL;
        let ctr = inb(&mut dev, DATA_OFFSET);
        dev.write(COMMAND_OFFSET, &[CMD_WRITE_CTR]);
        dev.write(DATA_OFFSET, &[0x44]);
        dev.write(COMMAND_OFFSET, &[CMD_READ_CTR]);

        assert_eq!(full, STATUS_OUTPUT_FULL);
        assert_eq!(ctr, CTR_DEFAULT);
        assert_eq!(inb(&mut dev, DATA_OFFSET), 0x44);
        assert_eq!(inb(&mut dev, COMMAND_OFFSET) & STATUS_OUTPUT_FULL, 0);
    }

    #[test]
    fn test_i8042_keyboard_get_id_acks_and_interrupts() {
        let (mut dev, _) = device();

        dev.write(DATA_OFFSET, &[KBD_CMD_GET_ID]);

        assert!(dev.irq().unwrap().event().reset().unwrap());
        let bytes: Vec<u8> = (0..3).map(|_| inb(&mut dev, DATA_OFFSET)).collect();
        assert_eq!(bytes, [KBD_ACK, 0xab, 0x83]);
    }

    #[test]
    fn test_i8042_aux_probe_answers_absent() {
        let (mut dev, _) = device();

        dev.write(COMMAND_OFFSET, &[CMD_WRITE_AUX_BUFFER]);
        dev.write(DATA_OFFSET, &[0x5a]);
        let loop_status = inb(&mut dev, COMMAND_OFFSET);
        dev.write(COMMAND_OFFSET, &[CMD_AUX_TEST]);

        assert_eq!(loop_status & 0x20, 0, "not aux data");
        assert_eq!(inb(&mut dev, DATA_OFFSET), AUX_TEST_ABSENT);
    }

    #[test]
    fn test_i8042_bad_sizes_and_offsets_ignored() {
        let (mut dev, resets) = device();
        let mut word = [0u8; 2];

        dev.write(COMMAND_OFFSET, &[0xfe, 0xfe]);
        dev.write(2, &[0xfe]);
        dev.read(COMMAND_OFFSET, &mut word);

        assert_eq!(resets.load(Ordering::SeqCst), 0);
        assert_eq!(word, [0xff, 0xff]);
    }

    #[test]
    fn test_i8042_keyboard_queue_bounded() {
        let (mut dev, _) = device();

        for _ in 0..100 {
            dev.write(DATA_OFFSET, &[KBD_CMD_GET_ID]);
        }

        assert!(dev.output.len() <= QUEUE_LIMIT);
    }
}
