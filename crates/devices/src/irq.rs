//! [`IrqTrigger`]: how a device raises its interrupt line.

use std::io;

use lcow_base::Event;

/// An edge-triggered interrupt line: an [`Event`] the hypervisor turns into a pulse of the
/// device's IRQ without a VMM round trip (the VMM gets it from `VmEvents::irq_event`: a KVM
/// irqfd, a WHP trigger).
#[derive(Debug)]
pub struct IrqTrigger {
    event: Event,
}

impl IrqTrigger {
    /// A trigger on a fresh event that nothing raises a line for yet (tests, or a VMM that
    /// registers it afterwards).
    pub fn new() -> io::Result<Self> {
        Ok(Self::from_event(Event::new()?))
    }

    /// A trigger that signals `event`.
    pub fn from_event(event: Event) -> Self {
        Self { event }
    }

    /// The event it signals.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Pulses the line.
    pub fn trigger(&self) -> io::Result<()> {
        self.event.signal()
    }
}

impl vm_superio::Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        IrqTrigger::trigger(self)
    }
}
