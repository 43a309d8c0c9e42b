//! Interrupt controllers emulated in user space, for backends whose hypervisor has only the
//! local APIC (WHP: docs/windows.md). KVM has all of them in the kernel and uses none of this.
//!
//! - [`Ioapic`]: the I/O APIC the guest's MP table names, routing device IRQ lines (pins) to
//!   local APIC vectors; it returns each interrupt to inject as a [`Delivery`].
//! - [`PicStub`]: the legacy 8259 pair, answered but never raising anything (the guest masks it
//!   and uses the I/O APIC).
//!
//! Both are plain state machines with no hypervisor calls, so they are tested on every host.

mod ioapic;
mod pic;

pub use ioapic::{Delivery, DeliveryMode, Ioapic, IOAPIC_NUM_PINS, IOAPIC_SIZE};
pub use pic::PicStub;
