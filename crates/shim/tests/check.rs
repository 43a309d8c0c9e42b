//! `containerd-shim-lcow-v1 check` against the real lcow-vmm beside it (the workspace's
//! `cargo test` builds both; under Wine, `make test-windows`): the hypervisor line is what
//! `lcow-vmm probe` found, missing files are named, and the exit status is non-zero when
//! anything is missing. Under Wine (no WinHvPlatform.dll) the hypervisor is reported missing
//! with how to turn WHP on; on a Windows host with WHP on it would read `ok`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn sibling(name: &str) -> PathBuf {
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-lcow-v1"));
    let path = shim
        .with_file_name(name)
        .with_extension(std::env::consts::EXE_EXTENSION);
    assert!(
        path.is_file(),
        "{} is not built: run the workspace's tests (cargo test --workspace, make test-windows)",
        path.display()
    );
    path
}

#[test]
fn test_check_reports_the_vmms_hypervisor_and_missing_files() {
    let vmm = sibling("lcow-vmm");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lcow.toml");
    // TOML literal strings: Windows paths keep their backslashes.
    std::fs::write(
        &config,
        format!(
            "vmm = '{}'\nkernel = '{1}/no-kernel'\ninitramfs = '{1}/no-initramfs'\nstate_dir = '{1}/state'\n",
            vmm.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let probe = Command::new(&vmm)
        .args(["probe", "--json"])
        .output()
        .unwrap();
    let found: lcow_protocol::vm::HostProbe = serde_json::from_slice(&probe.stdout).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_containerd-shim-lcow-v1"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();

    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |what: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(what))
            .unwrap_or_else(|| panic!("no {what} line in:\n{text}"))
            .to_owned()
    };
    let hypervisor = line("hypervisor");
    let state = if found.ready { " ok " } else { " MISSING " };
    assert!(hypervisor.contains(state), "{hypervisor}");
    assert!(
        hypervisor.contains(&format!("{}: {}", found.hypervisor, found.detail)),
        "{hypervisor}"
    );
    if cfg!(windows) {
        assert_eq!(found.hypervisor, "whp");
        if !found.ready {
            assert!(
                hypervisor.contains("Windows Hypervisor Platform"),
                "{hypervisor}"
            );
        }
    }
    assert!(line("vmm").contains(" ok "), "{}", line("vmm"));
    assert!(line("kernel").contains("no-kernel"), "{}", line("kernel"));
    assert!(line("kernel").contains(" MISSING "), "{}", line("kernel"));
    assert!(text.contains("not ready:"), "{text}");
}
