//! How a VM ends: [`VmState`] holds the first outcome any part of the VMM reports, and the halt
//! monitor detects a guest that powered itself off without ACPI.
//!
//! # Power-off without ACPI
//!
//! Our guest kernel has no ACPI, so `poweroff -f` turns into a halt: Linux stops every CPU with
//! interrupts disabled (`native_machine_halt` → `stop_this_cpu`: local APIC off, `cli; hlt`
//! forever). With an in-kernel irqchip a `hlt` never leaves the hypervisor, so no vCPU exits.
//! The monitor looks every [`HALT_CHECK_INTERVAL`] (100 ms), once the guest has made its first
//! port I/O or MMIO exit, and only when no vCPU made one during the last interval (a guest
//! printing its last words is not idle): it
//! kicks every vCPU, each vCPU thread answers with its MP state and RFLAGS.IF, and when every
//! vCPU is halted with interrupts disabled (or was never started by the guest, and at least one
//! is halted) a second round confirms it and the VM ends with [`ExitReason::PowerOff`].
//!
//! Latency: from the last vCPU halting to the VM's end takes one to two intervals (100–200 ms;
//! the first interval after the guest's final console line is not quiet) plus two kick round
//! trips (well under 1 ms on hardware KVM). The cost while the guest runs: one forced exit per
//! vCPU per 100 ms while the guest is quiet, none while it does I/O.
//!
//! A guest that halts all CPUs with interrupts off for another reason (an early-boot
//! `halt_loop`) is reported as powered off too: nothing could ever wake it.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lcow_hypervisor::{MpState, VcpuKick};

use crate::vcpu_error::VcpuError;

/// How often the halt monitor looks at the vCPUs.
pub const HALT_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How long the monitor waits for the vCPU threads to answer a probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a VM ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest powered off (or halted every CPU for good).
    PowerOff,
    /// The guest rebooted: a triple fault, the i8042 reset line, or a reset event.
    Reset,
    /// The guest kernel panicked (seen on its serial console), then rebooted or halted.
    GuestPanic,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitReason::PowerOff => "power-off",
            ExitReason::Reset => "reset",
            ExitReason::GuestPanic => "guest-panic",
        })
    }
}

/// The VM's end, shared by the vCPU threads, the devices, the monitor and the main thread.
#[derive(Debug, Default)]
pub struct VmState {
    outcome: Mutex<Option<Result<ExitReason, VcpuError>>>,
    done: Condvar,
    stop: AtomicBool,
}

impl VmState {
    /// A running VM.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends the VM with `outcome`, unless it already ended (the first outcome wins).
    pub fn finish(&self, outcome: Result<ExitReason, VcpuError>) {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(outcome);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.done.notify_all();
    }

    /// Whether the VM has ended: vCPU threads stop at their next exit.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits until the VM ends or `timeout` passes; returns whether it ended.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let (slot, _) = self
            .done
            .wait_timeout_while(slot, timeout, |o| o.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        slot.is_some()
    }

    /// Waits until the VM ends.
    pub fn wait(&self) {
        let slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let _slot = self
            .done
            .wait_while(slot, |o| o.is_none())
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Takes the outcome (once the VM has ended).
    pub fn take_outcome(&self) -> Option<Result<ExitReason, VcpuError>> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A vCPU's answer to a halt probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeAnswer {
    /// Halted with interrupts disabled.
    pub halted: bool,
    /// Halted with interrupts disabled, or never started by the guest (waiting for INIT/SIPI).
    pub stopped: bool,
}

#[derive(Debug, Default)]
struct Probe {
    requested: u64,
    answered: u64,
    answer: ProbeAnswer,
}

/// What a vCPU thread shares with the monitor: its exit counter and the halt probe.
#[derive(Debug, Default)]
pub struct VcpuShared {
    /// Port I/O and MMIO exits so far.
    pub io_exits: AtomicU64,
    probe: Mutex<Probe>,
    answered: Condvar,
}

impl VcpuShared {
    /// Asks for an answer to probe `generation` (the caller then kicks the vCPU).
    fn request(&self, generation: u64) {
        self.probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requested = generation;
    }

    /// Called by the vCPU thread between runs: if a probe is pending, answers it with `read`'s
    /// MP state and "halted with interrupts disabled".
    pub fn answer_probe(&self, read: impl FnOnce() -> (Option<MpState>, bool)) {
        let mut probe = self.probe.lock().unwrap_or_else(PoisonError::into_inner);
        if probe.answered == probe.requested {
            return;
        }
        let (mp_state, halted) = read();
        let never_started = matches!(
            mp_state,
            Some(MpState::Uninitialized | MpState::InitReceived)
        );
        probe.answer = ProbeAnswer {
            halted,
            stopped: halted || never_started,
        };
        probe.answered = probe.requested;
        self.answered.notify_all();
    }

    /// Waits until probe `generation` is answered or `deadline` passes.
    fn wait_answer(&self, generation: u64, deadline: Instant) -> Option<ProbeAnswer> {
        let mut probe = self.probe.lock().unwrap_or_else(PoisonError::into_inner);
        while probe.answered != generation {
            let left = deadline.checked_duration_since(Instant::now())?;
            probe = self
                .answered
                .wait_timeout(probe, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Some(probe.answer)
    }
}

/// Whether a set of answers means the guest is powered off.
pub fn powered_off(answers: &[ProbeAnswer]) -> bool {
    !answers.is_empty() && answers.iter().all(|a| a.stopped) && answers.iter().any(|a| a.halted)
}

/// One vCPU as the monitor sees it.
#[derive(Debug, Clone)]
pub struct MonitoredVcpu {
    /// Its counters and probe.
    pub shared: Arc<VcpuShared>,
    /// Its kicker.
    pub kick: Arc<dyn VcpuKick>,
}

struct HaltMonitor<'a> {
    vcpus: &'a [MonitoredVcpu],
    state: &'a VmState,
    generation: u64,
}

impl HaltMonitor<'_> {
    fn exits(&self) -> Vec<u64> {
        self.vcpus
            .iter()
            .map(|v| v.shared.io_exits.load(Ordering::Relaxed))
            .collect()
    }

    /// Probes every vCPU once; `None` if one did not answer in time (or the VM ended).
    fn probe(&mut self) -> Option<Vec<ProbeAnswer>> {
        self.generation += 1;
        for v in self.vcpus {
            v.shared.request(self.generation);
            v.kick.kick();
        }
        let deadline = Instant::now() + PROBE_TIMEOUT;
        let answers: Option<Vec<_>> = self
            .vcpus
            .iter()
            .map(|v| v.shared.wait_answer(self.generation, deadline))
            .collect();
        if answers.is_none() && !self.state.stopping() {
            tracing::debug!("a vcpu did not answer the halt probe in time");
        }
        answers
    }

    fn run(&mut self) {
        let mut last = self.exits();
        while !self.state.wait_timeout(HALT_CHECK_INTERVAL) {
            let now = self.exits();
            if now != last {
                last = now;
                continue;
            }
            // Before the guest's first I/O there is nothing to power off, and probing a vCPU
            // that is still making its first guest entries can only slow it down.
            if last.iter().all(|&n| n == 0) {
                continue;
            }
            let Some(first) = self.probe() else { continue };
            if !powered_off(&first) {
                continue;
            }
            let confirmed = self.probe().is_some_and(|a| powered_off(&a));
            if confirmed && self.exits() == last {
                tracing::debug!("every vcpu is halted with interrupts disabled");
                self.state.finish(Ok(ExitReason::PowerOff));
                return;
            }
        }
    }
}

/// Runs the halt monitor (see the module documentation) until the VM ends.
pub fn run_halt_monitor(state: &VmState, vcpus: &[MonitoredVcpu]) {
    HaltMonitor {
        vcpus,
        state,
        generation: 0,
    }
    .run();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A kicker that answers the probe itself, as the vCPU thread would, and ends the VM
    /// after `limit` probes (so a monitor that never sees a power-off still returns).
    #[derive(Debug)]
    struct AnsweringKick {
        shared: Arc<VcpuShared>,
        state: Arc<VmState>,
        answer: (Option<MpState>, bool),
        probes: AtomicU64,
        limit: u64,
    }

    impl VcpuKick for AnsweringKick {
        fn kick(&self) {
            if self.probes.fetch_add(1, Ordering::SeqCst) + 1 >= self.limit {
                self.state.finish(Ok(ExitReason::Reset));
            }
            self.shared.answer_probe(|| self.answer);
        }
    }

    fn vcpus(state: &Arc<VmState>, answers: &[(Option<MpState>, bool)]) -> Vec<MonitoredVcpu> {
        answers
            .iter()
            .map(|&answer| {
                let shared = Arc::new(VcpuShared::default());
                // The guest has done I/O before: the monitor probes.
                shared.io_exits.store(1, Ordering::Relaxed);
                MonitoredVcpu {
                    shared: shared.clone(),
                    kick: Arc::new(AnsweringKick {
                        shared,
                        state: state.clone(),
                        answer,
                        probes: AtomicU64::new(0),
                        limit: 4,
                    }),
                }
            })
            .collect()
    }

    const HALTED: ProbeAnswer = ProbeAnswer {
        halted: true,
        stopped: true,
    };
    const RUNNING: ProbeAnswer = ProbeAnswer {
        halted: false,
        stopped: false,
    };
    const NEVER_STARTED: ProbeAnswer = ProbeAnswer {
        halted: false,
        stopped: true,
    };

    #[test]
    fn test_powered_off_all_halted_true() {
        assert!(powered_off(&[HALTED, HALTED]));
        assert!(powered_off(&[HALTED, NEVER_STARTED]));
    }

    #[test]
    fn test_powered_off_one_running_or_none_halted_false() {
        assert!(!powered_off(&[HALTED, RUNNING]));
        assert!(!powered_off(&[NEVER_STARTED, NEVER_STARTED]));
        assert!(!powered_off(&[]));
    }

    #[test]
    fn test_answer_probe_only_when_requested() {
        let shared = VcpuShared::default();
        let mut reads = 0;

        shared.answer_probe(|| {
            reads += 1;
            (Some(MpState::Halted), true)
        });
        shared.request(1);
        shared.answer_probe(|| {
            reads += 1;
            (Some(MpState::Uninitialized), false)
        });

        assert_eq!(reads, 1);
        let answer = shared.wait_answer(1, Instant::now() + Duration::from_secs(1));
        assert_eq!(answer, Some(NEVER_STARTED));
    }

    #[test]
    fn test_finish_first_outcome_wins() {
        let state = VmState::new();

        state.finish(Ok(ExitReason::Reset));
        state.finish(Ok(ExitReason::PowerOff));

        assert!(state.stopping());
        assert!(state.wait_timeout(Duration::ZERO));
        assert!(matches!(state.take_outcome(), Some(Ok(ExitReason::Reset))));
    }

    #[test]
    fn test_monitor_all_halted_vcpus_power_off() {
        let state = Arc::new(VmState::new());
        let halted = (Some(MpState::Halted), true);
        let never_started = (Some(MpState::Uninitialized), false);
        let vcpus = vcpus(&state, &[halted, never_started]);
        let start = Instant::now();

        run_halt_monitor(&state, &vcpus);

        assert!(matches!(
            state.take_outcome(),
            Some(Ok(ExitReason::PowerOff))
        ));
        assert!(start.elapsed() < 3 * HALT_CHECK_INTERVAL);
    }

    #[test]
    fn test_monitor_one_vcpu_running_no_power_off() {
        let state = Arc::new(VmState::new());
        let halted = (Some(MpState::Halted), true);
        let idle = (Some(MpState::Halted), false);
        let vcpus = vcpus(&state, &[halted, idle]);

        run_halt_monitor(&state, &vcpus);

        // The kickers ended the VM with "reset" after their probe limit.
        assert!(matches!(state.take_outcome(), Some(Ok(ExitReason::Reset))));
    }

    #[test]
    fn test_monitor_busy_vcpu_not_probed() {
        let state = Arc::new(VmState::new());
        let vcpus = vcpus(&state, &[(Some(MpState::Halted), true)]);
        vcpus[0].shared.io_exits.fetch_add(1, Ordering::Relaxed);
        state.finish(Ok(ExitReason::Reset));

        run_halt_monitor(&state, &vcpus);

        assert_eq!(vcpus[0].shared.probe.lock().unwrap().requested, 0);
    }

    #[test]
    fn test_exit_reason_display_words() {
        assert_eq!(ExitReason::PowerOff.to_string(), "power-off");
        assert_eq!(ExitReason::Reset.to_string(), "reset");
    }
}
