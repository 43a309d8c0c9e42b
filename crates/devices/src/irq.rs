//! [`IrqTrigger`]: how a device raises its interrupt line.

use std::io;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// An edge-triggered interrupt line: an eventfd that the VMM registers with the hypervisor as an
/// irqfd for the device's IRQ, so a write pulses the line without a VMM round trip.
#[derive(Debug)]
pub struct IrqTrigger {
    event: EventFd,
}

impl IrqTrigger {
    /// A new trigger on a fresh non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            event: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    /// The eventfd to register as an irqfd.
    pub fn event(&self) -> &EventFd {
        &self.event
    }

    /// Pulses the line.
    pub fn trigger(&self) -> io::Result<()> {
        self.event.write(1)
    }
}

impl vm_superio::Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        IrqTrigger::trigger(self)
    }
}
