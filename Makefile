# The project's front door. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
RUNS ?= 20

.PHONY: help deps build kernel rig-kernel guest guest-test test unit-test rig-test lint fmt rig-reliability demo install e2e check-windows test-windows
PREFIX ?= /usr/local

help:
	@echo "make deps             install missing Debian packages (kernel build, QEMU from backports, busybox)"
	@echo "make build            build the Rust workspace"
	@echo "make kernel           build (or reuse) the guest kernel; prints the vmlinux path"
	@echo "make rig-kernel       build (or reuse) the KVM test rig's L1 kernel; prints the vmlinux path"
	@echo "make guest            build the static guest agent and its initramfs; prints the initramfs path"
	@echo "make guest-test       the guest initramfs plus the busybox test rootfs; prints its path"
	@echo "make test             unit and conformance tests, pjdfstest on the host FUSE mount, then the rig tests"
	@echo "make fs-rig-test      9p and virtio-fs shares in a guest: pjdfstest, locks, mmap, SQLite (not in make test: the rig resets guests under share load)"
	@echo "make lint             rustfmt check, clippy -D warnings, shellcheck of tests/, bench/ and scripts/, make check-windows"
	@echo "make check-windows    cargo check and clippy -D warnings of the Windows crates for x86_64-pc-windows-gnu (docs/windows.md)"
	@echo "make test-windows     the Windows crates' tests cross-compiled and run under wine64 (scripts/wine-run), and the package's check"
	@echo "make package-windows  dist/lcow-<version>-windows-x86_64.zip: the Windows programs, guest kernel and initramfs, lcow.toml, install page"
	@echo "make rig-reliability  boot the rig smoke RUNS times (default 20) and count the passes"
	@echo "make rig-stdio-ref    QEMU guests stream STDIO_MIB MiB (16) out STDIO_RUNS times (5) in the rig: the reference for stdio deaths"
	@echo "make install          install containerd-shim-lcow-v1, lcow-vmm, lcow-ctl, the guest kernel and initramfs under PREFIX (/usr/local)"
	@echo "make demo             install, then a private containerd runs a container through the shim (in the rig on KVM-PVM hosts)"
	@echo "make e2e              containerd end to end through the shim (CONTAINERD=1.6|1.7|2.1, E2E_SEGMENTS=...): busybox and PostgreSQL images, bind mounts, OOM, exec, tty, pods, a CRI pod"
	@echo "make bench            boot time and memory of lcow-vmm against QEMU; lcow-fs FUSE against native (bench/results/)"

deps:
	@scripts/deps.sh kernel rig guest fs disk e2e lint

build:
	$(CARGO) build --workspace --all-targets

kernel:
	@scripts/build-kernel.sh guest

rig-kernel:
	@scripts/build-kernel.sh rig

guest:
	@scripts/build-guest.sh

guest-test:
	@scripts/build-guest.sh --test

# tests/cri (the CRI e2e client) is a workspace of its own: tonic and protoc stay out of the
# main build.
CRI_CARGO = cd tests/cri && $(CARGO)
CRI_TARGET = --target-dir ../../target/cri

unit-test:
	$(CARGO) test --workspace
	@scripts/deps.sh cri
	$(CRI_CARGO) test --locked $(CRI_TARGET)

rig-test: deps
	$(CARGO) build -p lcow-vmm -p lcow-ctl
	@scripts/build-kernel.sh guest >/dev/null
	@scripts/build-kernel.sh rig >/dev/null
	@scripts/build-guest.sh --test >/dev/null
	$(CARGO) build -p lcow-fs
	@scripts/deps.sh fs
	$(CARGO) build -p lcow-shim
	tests/run-suite tests/fs/pjdfstest-host tests/rig/selftest tests/rig/smoke tests/rig/vmm-boot tests/rig/disk tests/rig/layers tests/rig/agent tests/e2e/run tests/e2e/containerd-2.1

# The share tests in a guest: not part of `make test` while tests/fs/README.md's open problem stands.
.PHONY: fs-rig-test
fs-rig-test: deps
	$(CARGO) build -p lcow-vmm -p lcow-ctl
	tests/run-suite tests/rig/fs

test: unit-test test-windows rig-test

# Windows hosts (docs/windows.md): the crates that ship on Windows, cross-compiled with mingw and
# tested under Debian's wine64. The list grows as each crate gets its Windows half.
WINDOWS_CRATES = lcow-base lcow-ctl lcow-devices lcow-disk lcow-fs lcow-hypervisor lcow-protocol lcow-shim lcow-vmm
WINDOWS_PKGS = $(addprefix -p ,$(WINDOWS_CRATES))

# scripts/cargo-windows adds --target x86_64-pc-windows-gnu and the patches Windows builds need.
check-windows:
	@scripts/windows-toolchain.sh
	CARGO=$(CARGO) scripts/cargo-windows check $(WINDOWS_PKGS) --all-targets
	CARGO=$(CARGO) scripts/cargo-windows clippy $(WINDOWS_PKGS) --all-targets -- -D warnings

test-windows:
	@scripts/windows-toolchain.sh
	CARGO=$(CARGO) CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$(CURDIR)/scripts/wine-run \
	  scripts/cargo-windows test $(WINDOWS_PKGS)
	tests/run-suite tests/windows/package

# dist/lcow-<version>-windows-x86_64.zip: the Windows programs, guest kernel, initramfs, a
# sample lcow.toml and docs/windows-install.md (docs/windows.md).
.PHONY: package-windows
package-windows: deps
	@scripts/package-windows.sh

lint:
	@scripts/deps.sh lint
	$(CARGO) fmt --all -- --check
	$(CRI_CARGO) fmt -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CRI_CARGO) clippy --locked --all-targets $(CRI_TARGET) -- -D warnings
	@scripts/shellcheck.sh
	@$(MAKE) --no-print-directory check-windows

fmt:
	$(CARGO) fmt --all
	$(CRI_CARGO) fmt

rig-reliability: deps
	@tests/rig/reliability $(RUNS)

# The QEMU reference for guests that die under heavy stdio in the rig (tests/rig/README.md).
.PHONY: rig-stdio-ref
rig-stdio-ref: deps
	@tests/rig/stdio-ref $(or $(STDIO_RUNS),5) $(or $(STDIO_MIB),16)

.PHONY: demo
demo: install
	@bb=$$(tests/e2e/images busybox) && echo "demo: $$(tests/rig/kvm-kind) host; Debian's containerd $$(containerd --version | cut -d' ' -f3)" && \
	  tests/rig/run --timeout 600 -- env PREFIX=$(PREFIX) tests/e2e/demo "$$bb"

# The runtime, installed where containerd finds the shim (PATH) and the shim its defaults.
install: deps
	$(CARGO) build --release -p lcow-vmm -p lcow-shim -p lcow-ctl
	@k=$$(scripts/build-kernel.sh guest) && i=$$(scripts/build-guest.sh) && \
	  install -D -m 0755 target/release/lcow-vmm $(PREFIX)/bin/lcow-vmm && \
	  install -D -m 0755 target/release/containerd-shim-lcow-v1 $(PREFIX)/bin/containerd-shim-lcow-v1 && \
	  install -D -m 0755 target/release/lcow-ctl $(PREFIX)/bin/lcow-ctl && \
	  install -D -m 0644 "$$k" $(PREFIX)/share/lcow/vmlinux && \
	  install -D -m 0644 "$$i" $(PREFIX)/share/lcow/initramfs.cpio && \
	  echo "installed under $(PREFIX); containerd-shim-lcow-v1 check:" && \
	  ($(PREFIX)/bin/containerd-shim-lcow-v1 check || true)

# CONTAINERD=1.6 (Debian 12's, the default), 1.7 (trixie's) or 2.1 (sid's): scripts/containerd.sh.
CONTAINERD ?= 1.6
e2e: deps
	$(CARGO) build -p lcow-vmm -p lcow-shim
	E2E_CONTAINERD=$(CONTAINERD) tests/run-suite tests/e2e/run

.PHONY: bench
bench: deps
	@bench/run
