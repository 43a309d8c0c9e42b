//! Hypervisor conformance on KVM: each test calls one generic body of `conformance` with a
//! `KvmHypervisor`. They run wherever `/dev/kvm` is usable, KVM-PVM included (small payloads run
//! there), and print `SKIP: <reason>` otherwise.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use lcow_hypervisor::kvm::{kvm_kind, KvmHypervisor, KvmKind};

/// The KVM backend, or `None` after printing why the test is skipped.
fn kvm() -> Option<KvmHypervisor> {
    let kind = kvm_kind();
    if kind == KvmKind::Missing {
        eprintln!("SKIP: {}", kind.explain());
        return None;
    }
    match KvmHypervisor::new() {
        Ok(hv) => Some(hv),
        Err(e) => {
            eprintln!("SKIP: /dev/kvm is not usable ({kind}): {e}");
            None
        }
    }
}

/// One line per behaviour: `kvm_test!(test name, conformance body)`.
macro_rules! kvm_test {
    ($test:ident, $body:ident) => {
        #[test]
        fn $test() {
            if let Some(hv) = kvm() {
                conformance::$body(&hv);
            }
        }
    };
}

kvm_test!(test_port_io_real_mode_values_round_trip, real_mode_port_io);
kvm_test!(test_mmio_unbacked_address_reaches_callback, mmio_read_write);
kvm_test!(test_slots_second_slot_used_then_removed, two_memory_slots);
kvm_test!(test_read_only_slot_write_exits_as_mmio, read_only_slot);
kvm_test!(test_regs_set_before_run_seen_by_guest, vcpu_register_setup);
kvm_test!(test_long_mode_64bit_io_and_mmio_work, long_mode_io_and_mmio);
kvm_test!(test_cpuid_set_values_seen_by_guest, cpuid_in_guest);
kvm_test!(test_msrs_unsupported_skipped_rest_applied, msrs_filtered);
kvm_test!(test_kick_before_and_during_run_returns_intr, kick_stops_run);
kvm_test!(test_irq_line_pulse_interrupts_guest, irq_line_interrupts);
kvm_test!(
    test_halt_cli_hlt_reads_halted_with_interrupts_disabled,
    halt_state
);

kvm_test!(test_irq_event_signal_interrupts_guest, irq_event_interrupts);
kvm_test!(
    test_io_event_write_signals_without_exit,
    io_event_signals_without_exit
);

#[test]
fn test_kvm_kind_matches_rig_script_words() {
    // Reads /sys and /proc only; the words are the ones tests/rig/kvm-kind prints.
    let kind = kvm_kind();
    let word = kind.to_string();
    assert!(
        ["hardware-vmx", "hardware-svm", "pvm", "none", "unknown"].contains(&word.as_str()),
        "{word}"
    );
    eprintln!("kvm kind: {word} ({})", kind.explain());
}
