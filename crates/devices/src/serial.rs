//! The 8250/16550A UART of the serial console, over `vm-superio`: COM1 at port
//! [`COM1_PORT`] with IRQ [`COM1_IRQ`]. What the guest transmits goes to a [`Write`] sink
//! (stdout, a file, or nowhere); guest input is not supported yet (the receive FIFO stays empty).
//!
//! The other three legacy COM ports are not emulated: their reads return all ones (the VMM's
//! default for unknown ports), so the Linux 8250 driver's probe finds no UART there.

use std::io::{self, Write};

use vm_superio::serial::NoEvents;
use vm_superio::Serial;

use crate::bus::BusDevice;
use crate::IrqTrigger;

/// The I/O port of COM1.
pub const COM1_PORT: u64 = 0x3f8;
/// The number of I/O ports a UART decodes.
pub const UART_PORTS: u64 = 8;
/// The IRQ line of COM1.
pub const COM1_IRQ: u32 = 4;

/// A sink that discards everything (the console is off).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A UART on the port I/O bus (see the module documentation).
pub struct SerialDevice {
    serial: Serial<IrqTrigger, NoEvents, Box<dyn Write + Send>>,
}

impl std::fmt::Debug for SerialDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialDevice").finish_non_exhaustive()
    }
}

impl SerialDevice {
    /// A UART that raises `irq` and writes what the guest transmits to `out`.
    pub fn new(irq: IrqTrigger, out: Box<dyn Write + Send>) -> Self {
        Self {
            serial: Serial::new(irq, out),
        }
    }

    /// The interrupt line, to register with the hypervisor.
    pub fn irq(&self) -> &IrqTrigger {
        self.serial.interrupt_evt()
    }
}

/// The register offset of a one-byte access, or `None` for any other access.
fn register(offset: u64, len: usize) -> Option<u8> {
    (len == 1 && offset < UART_PORTS).then_some(offset as u8)
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match register(offset, data.len()) {
            Some(reg) => data[0] = self.serial.read(reg),
            None => {
                tracing::debug!(offset, size = data.len(), "ignored a serial read");
                data.fill(0xff);
            }
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(reg) = register(offset, data.len()) else {
            tracing::debug!(offset, size = data.len(), "ignored a serial write");
            return;
        };
        if let Err(e) = self.serial.write(reg, data[0]) {
            // A closed stdout or a full disk must not stop the guest.
            tracing::debug!(error = %e, "serial output failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    const DATA: u64 = 0;
    const IER: u64 = 1;
    const IIR: u64 = 2;
    const LCR: u64 = 3;
    const LSR: u64 = 5;
    const SCR: u64 = 7;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn uart() -> (SerialDevice, Shared) {
        let out = Shared::default();
        (
            SerialDevice::new(IrqTrigger::new().unwrap(), Box::new(out.clone())),
            out,
        )
    }

    fn read(dev: &mut SerialDevice, offset: u64) -> u8 {
        let mut b = [0u8];
        dev.read(offset, &mut b);
        b[0]
    }

    #[test]
    fn test_serial_transmit_reaches_sink() {
        let (mut dev, out) = uart();

        for &b in b"ok\n" {
            dev.write(DATA, &[b]);
        }

        assert_eq!(out.0.lock().unwrap().as_slice(), b"ok\n");
        // Transmitter empty and holding register empty: the driver may always send.
        assert_eq!(read(&mut dev, LSR) & 0x60, 0x60);
    }

    #[test]
    fn test_serial_thr_interrupt_raises_irq_and_shows_in_iir() {
        let (mut dev, _out) = uart();
        dev.write(IER, &[0x02]); // THR empty interrupt

        dev.write(DATA, b"x");

        assert!(dev.irq().event().reset().unwrap(), "irq pulsed");
        assert_eq!(read(&mut dev, IIR) & 0x0f, 0x02, "THR empty pending");
        assert_eq!(read(&mut dev, IIR) & 0x0f, 0x01, "read clears it");
    }

    #[test]
    fn test_serial_scratch_and_dlab_registers_round_trip() {
        let (mut dev, out) = uart();

        dev.write(SCR, &[0x5a]);
        dev.write(LCR, &[0x80]); // DLAB: offsets 0 and 1 are the divisor
        dev.write(DATA, &[0x0c]);
        dev.write(IER, &[0x00]);
        let divisor = (read(&mut dev, DATA), read(&mut dev, IER));
        dev.write(LCR, &[0x03]);

        assert_eq!(read(&mut dev, SCR), 0x5a);
        assert_eq!(divisor, (0x0c, 0x00));
        assert!(out.0.lock().unwrap().is_empty(), "divisor is not output");
    }

    #[test]
    fn test_serial_wide_access_ignored() {
        let (mut dev, out) = uart();
        let mut word = [0u8; 2];

        dev.write(DATA, b"ab");
        dev.read(LSR, &mut word);
        dev.read(9, &mut word[..1]);

        assert!(out.0.lock().unwrap().is_empty());
        assert_eq!(word, [0xff, 0xff]);
    }

    #[test]
    fn test_serial_discard_sink_accepts_output() {
        let mut dev = SerialDevice::new(IrqTrigger::new().unwrap(), Box::new(Discard));
        dev.write(DATA, b"z");
        assert_eq!(read(&mut dev, LSR) & 0x60, 0x60);
    }
}
