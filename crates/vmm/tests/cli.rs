//! The `lcow-vmm` binary's contract on any host: usage, named errors for a bad kernel path,
//! and refusing a host that cannot run guests before loading anything (KVM-PVM or no KVM on
//! Linux; no usable WHP on Windows, which is every Windows host until the WHP backend runs
//! guests, and Wine).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use lcow_hypervisor::kvm::{kvm_kind, KvmKind};

fn lcow_vmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lcow-vmm"))
        .args(args)
        .env_remove("LCOW_ALLOW_PVM")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn test_help_documents_every_flag() {
    let out = lcow_vmm(&["run", "--help"]);

    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in [
        "--kernel",
        "--initrd",
        "--cmdline",
        "--memory",
        "--vcpus",
        "--console",
        "--vsock",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
    assert!(text.contains("[default: 256M]"), "{text}");
}

#[test]
fn test_run_missing_kernel_named_error_not_panic() {
    let out = lcow_vmm(&["run", "--kernel", "/nonexistent/lcow/vmlinux"]);

    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lcow-vmm: error: cannot read the kernel /nonexistent/lcow/vmlinux"),
        "{err}"
    );
    assert!(err.contains("caused by: "), "{err}");
    if cfg!(target_os = "linux") {
        assert!(err.contains("caused by: No such file"), "{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn test_run_bad_memory_usage_error() {
    let out = lcow_vmm(&["run", "--kernel", "k", "--memory", "12X"]);

    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid size '12X'"),
        "{}",
        stderr(&out)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn test_run_on_kvm_pvm_refused_at_once() {
    let kind = kvm_kind();
    if kind != KvmKind::Pvm && kind != KvmKind::Missing {
        eprintln!("SKIP: /dev/kvm is {kind}: the refusal applies to KVM-PVM and missing KVM");
        return;
    }
    // Any readable file passes the kernel check; the refusal comes before loading it.
    let kernel = env!("CARGO_BIN_EXE_lcow-vmm");
    let start = Instant::now();

    let out = lcow_vmm(&["run", "--kernel", kernel]);

    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    if kind == KvmKind::Pvm {
        assert!(err.contains("KVM-PVM"), "{err}");
        assert!(err.contains("tests/rig/run"), "{err}");
    } else {
        assert!(
            err.contains("no /dev/kvm: load kvm_intel or kvm_amd"),
            "{err}"
        );
    }
}

/// Windows (Wine in `make test-windows`): `run` checks WHP before loading anything and says
/// what is missing in one line.
#[cfg(windows)]
#[test]
fn test_run_without_usable_whp_refused_at_once_naming_it() {
    let kernel = env!("CARGO_BIN_EXE_lcow-vmm");
    let start = Instant::now();

    let out = lcow_vmm(&["run", "--kernel", kernel, "--initrd", kernel]);

    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.contains("Windows Hypervisor Platform"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    eprintln!("lcow-vmm said: {err}");
}

/// `probe --json` is what the shim's `check` reads: one object whose `ready` agrees with the
/// exit status and with what this host is (Linux: the KVM kind; Windows: WHP, which Wine lacks).
#[test]
fn test_probe_reports_the_hypervisor_and_exits_by_readiness() {
    let out = lcow_vmm(&["probe", "--json"]);

    let text = String::from_utf8_lossy(&out.stdout);
    let found: lcow_protocol::vm::HostProbe = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(out.status.success(), found.ready, "{text}");
    assert!(!found.detail.is_empty());
    #[cfg(target_os = "linux")]
    {
        assert_eq!(found.hypervisor, "kvm");
        assert_eq!(found.ready, kvm_kind().boots_linux(), "{text}");
    }
    #[cfg(windows)]
    {
        assert_eq!(found.hypervisor, "whp");
        if !found.ready {
            assert!(
                found.detail.contains("Windows Hypervisor Platform"),
                "{text}"
            );
        }
    }
    let plain = lcow_vmm(&["probe"]);
    let line = String::from_utf8_lossy(&plain.stdout);
    let state = if found.ready { "ready" } else { "not ready" };
    assert_eq!(
        line.trim(),
        format!("{}: {state}: {}", found.hypervisor, found.detail)
    );
    assert_eq!(plain.status.code(), out.status.code());
}
