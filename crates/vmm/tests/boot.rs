//! Boots a real guest (docs/architecture.md, tier 4) when this host's KVM can: `kvm_kind()` must say
//! hardware virtualization, and `$LCOW_TEST_KERNEL` and `$LCOW_TEST_INITRD` must name the guest
//! kernel and an initramfs whose /init prints `$LCOW_TEST_MARKER` (default `LCOW-SMOKE-OK`,
//! followed by `cpus=N` for the smoke initramfs of `tests/rig/mk-smoke-initramfs`) and then
//! reboots or powers off. Otherwise it prints `SKIP: <reason>` and passes.

// KVM's: the WHP backend cannot boot guests yet (docs/windows.md).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lcow_hypervisor::kvm::kvm_kind;
use lcow_vmm::{Console, VmConfig};

/// A boot that takes longer than this fails the test.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

fn inputs() -> Option<(PathBuf, PathBuf)> {
    let kind = kvm_kind();
    if !kind.boots_linux() {
        eprintln!("SKIP: {} (run through tests/rig/run)", kind.explain());
        return None;
    }
    match (
        std::env::var_os("LCOW_TEST_KERNEL"),
        std::env::var_os("LCOW_TEST_INITRD"),
    ) {
        (Some(kernel), Some(initrd)) => Some((kernel.into(), initrd.into())),
        _ => {
            eprintln!("SKIP: LCOW_TEST_KERNEL and LCOW_TEST_INITRD are not both set");
            None
        }
    }
}

#[test]
fn test_boot_guest_marker_then_clean_exit() {
    let Some((kernel, initrd)) = inputs() else {
        return;
    };
    let marker = std::env::var("LCOW_TEST_MARKER").unwrap_or_else(|_| "LCOW-SMOKE-OK".into());
    for vcpus in [1, 2] {
        let console =
            std::env::temp_dir().join(format!("lcow-vmm-boot-{}-{vcpus}.log", std::process::id()));
        let config = VmConfig {
            kernel: kernel.clone(),
            initrd: Some(initrd.clone()),
            cmdline: "console=ttyS0 reboot=t panic=-1 quiet".into(),
            memory: 256 << 20,
            vcpus,
            console: Console::File(console.clone()),
            vsock: None,
            shares: Vec::new(),
            disks: Vec::new(),
        };
        let start = Instant::now();
        let (done, result) = mpsc::channel();
        thread::spawn(move || done.send(lcow_vmm::run(&config)));

        let outcome = result.recv_timeout(BOOT_TIMEOUT).unwrap_or_else(|_| {
            let output = std::fs::read_to_string(&console).unwrap_or_default();
            panic!("{vcpus} vcpus: no exit after {BOOT_TIMEOUT:?}; console so far:\n{output}")
        });

        let reason = outcome.unwrap_or_else(|e| panic!("{vcpus} vcpus: {e:?}"));
        let output = std::fs::read_to_string(&console).unwrap();
        eprintln!(
            "{vcpus} vcpus: {reason} after {:?}\n{output}",
            start.elapsed()
        );
        let line = output
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_else(|| panic!("{vcpus} vcpus: no '{marker}' on the console"));
        if marker == "LCOW-SMOKE-OK" {
            assert!(line.contains(&format!("cpus={vcpus}")), "{line}");
        }
        let _ = std::fs::remove_file(console);
    }
}
