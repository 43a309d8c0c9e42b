# The project's front door. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo
RUNS ?= 20

.PHONY: help deps build kernel rig-kernel guest guest-test test unit-test rig-test lint fmt rig-reliability demo

help:
	@echo "make deps             install missing Debian packages (kernel build, QEMU from backports, busybox)"
	@echo "make build            build the Rust workspace"
	@echo "make kernel           build (or reuse) the guest kernel; prints the vmlinux path"
	@echo "make rig-kernel       build (or reuse) the KVM test rig's L1 kernel; prints the vmlinux path"
	@echo "make guest            build the static guest agent and its initramfs; prints the initramfs path"
	@echo "make guest-test       the guest initramfs plus the busybox test rootfs; prints its path"
	@echo "make test             unit and conformance tests, pjdfstest on the host FUSE mount, then the rig tests"
	@echo "make fs-rig-test      9p and virtio-fs shares in a guest: pjdfstest, locks, mmap, SQLite (not in make test: the rig resets guests under share load)"
	@echo "make lint             rustfmt check and clippy -D warnings"
	@echo "make rig-reliability  boot the rig smoke RUNS times (default 20) and count the passes"
	@echo "make demo             lcow-vmm boots the guest with lcow-agent and runs a container (in the rig on KVM-PVM hosts)"
	@echo "make bench            boot time and memory of lcow-vmm against QEMU; lcow-fs FUSE against native (bench/results/)"

deps:
	@scripts/deps.sh kernel rig guest fs

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

unit-test:
	$(CARGO) test --workspace

rig-test: deps
	$(CARGO) build -p lcow-vmm -p lcow-ctl
	@scripts/build-kernel.sh guest >/dev/null
	@scripts/build-kernel.sh rig >/dev/null
	@scripts/build-guest.sh --test >/dev/null
	$(CARGO) build -p lcow-fs
	@scripts/deps.sh fs
	tests/run-suite tests/fs/pjdfstest-host tests/rig/selftest tests/rig/smoke tests/rig/vmm-boot tests/rig/agent

# The share tests in a guest: not part of `make test` while tests/fs/README.md's open problem stands.
.PHONY: fs-rig-test
fs-rig-test: deps
	$(CARGO) build -p lcow-vmm -p lcow-ctl
	tests/run-suite tests/rig/fs

test: unit-test rig-test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

rig-reliability: deps
	@tests/rig/reliability $(RUNS)

.PHONY: demo
demo: deps
	$(CARGO) build -p lcow-vmm -p lcow-ctl
	@k=$$(scripts/build-kernel.sh guest) && i=$$(scripts/build-guest.sh --test) && \
	  echo "demo: lcow-vmm boots $$k with the lcow-agent initramfs under KVM ($$(tests/rig/kvm-kind) host)" && \
	  tests/rig/run --timeout 300 -- tests/rig/agent-demo target/debug/lcow-vmm target/debug/lcow-ctl "$$k" "$$i"

.PHONY: bench
bench: deps
	@bench/run
