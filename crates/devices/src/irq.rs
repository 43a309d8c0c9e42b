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

/// Test helper: how many times `event` (an irq line, a queue notification) was signalled since
/// it was last cleared, and clears it.
/// An eventfd counts (Linux); a Windows event only says whether it was signalled, so there the
/// answer is 0 or 1.
#[cfg(test)]
pub(crate) fn take_signals(event: &Event) -> u64 {
    #[cfg(target_os = "linux")]
    {
        use lcow_base::linux::EventExt;
        match event.eventfd().read() {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("reading the eventfd: {e}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        u64::from(
            event
                .reset()
                .unwrap_or_else(|e| panic!("clearing the event: {e}")),
        )
    }
}

/// Test helper: asserts `event` was signalled `n` times (on hosts whose events count; elsewhere,
/// that it was signalled at all when `n > 0` and not when `n == 0`).
#[cfg(test)]
pub(crate) fn assert_signals(event: &Event, n: u64) {
    let got = take_signals(event);
    if cfg!(target_os = "linux") {
        assert_eq!(got, n, "signals");
    } else {
        assert_eq!(got, u64::from(n > 0), "signalled");
    }
}
