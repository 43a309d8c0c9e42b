//! Hypervisor conformance on the Windows Hypervisor Platform: each test calls one generic body
//! of `conformance` with a `WhpHypervisor`. They run on a Windows host with WHP turned on and
//! print `SKIP: <reason>` elsewhere (under Wine, which has no WHP, every one skips).
//!
//! Two bodies are not listed: `irq_line_interrupts`/`irq_event_interrupts` drive the guest
//! through an 8259 PIC, which WHP does not have (the backend's PIC is a stub and interrupts go
//! through its I/O APIC), and `io_event_signals_without_exit` watches a port, while WHP's
//! doorbells watch MMIO addresses only.

#![cfg(all(windows, target_arch = "x86_64"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The PIC and port-doorbell bodies are not used here (see above).
#[allow(dead_code)]
mod conformance;

use lcow_hypervisor::whp::WhpHypervisor;

/// The WHP backend for two vCPUs (`halt_state` creates an application processor), or `None`
/// after printing why the test is skipped.
fn whp() -> Option<WhpHypervisor> {
    match WhpHypervisor::new(2) {
        Ok(hv) => Some(hv),
        Err(e) => {
            eprintln!("SKIP: needs a Windows host with the Windows Hypervisor Platform: {e}");
            None
        }
    }
}

/// One line per behaviour: `whp_test!(test name, conformance body)`.
macro_rules! whp_test {
    ($test:ident, $body:ident) => {
        #[test]
        fn $test() {
            if let Some(hv) = whp() {
                conformance::$body(&hv);
            }
        }
    };
}

whp_test!(test_port_io_real_mode_values_round_trip, real_mode_port_io);
whp_test!(test_mmio_unbacked_address_reaches_callback, mmio_read_write);
whp_test!(test_slots_second_slot_used_then_removed, two_memory_slots);
whp_test!(test_read_only_slot_write_exits_as_mmio, read_only_slot);
whp_test!(test_regs_set_before_run_seen_by_guest, vcpu_register_setup);
whp_test!(test_long_mode_64bit_io_and_mmio_work, long_mode_io_and_mmio);
whp_test!(test_cpuid_set_values_seen_by_guest, cpuid_in_guest);
whp_test!(test_msrs_unsupported_skipped_rest_applied, msrs_filtered);
whp_test!(test_kick_before_and_during_run_returns_intr, kick_stops_run);
whp_test!(
    test_halt_cli_hlt_reads_halted_with_interrupts_disabled,
    halt_state
);
