//! [`VcpuError`]: what configuring or running a vCPU can fail with. Its own module, so the vCPU
//! threads ([`crate::vcpu`]) and the monitor that collects their end ([`crate::monitor`]) both
//! use it without importing each other.

/// Errors of configuring or running a vCPU. Each names the vCPU.
#[derive(Debug, thiserror::Error)]
pub enum VcpuError {
    /// A configuration step failed.
    #[error("vcpu {vcpu}: failed to {step}")]
    Configure {
        /// The vCPU id.
        vcpu: u32,
        /// What was being done.
        step: &'static str,
        /// The hypervisor's cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
    /// `run()` failed.
    #[error("vcpu {vcpu}: failed to run")]
    Run {
        /// The vCPU id.
        vcpu: u32,
        /// The hypervisor's cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
    /// Completing a port I/O or MMIO exit failed.
    #[error("vcpu {vcpu}: failed to complete an i/o exit")]
    CompleteIo {
        /// The vCPU id.
        vcpu: u32,
        /// The hypervisor's cause.
        #[source]
        source: lcow_hypervisor::Error,
    },
    /// The hypervisor could not enter the guest.
    #[error(
        "vcpu {vcpu}: the hypervisor failed to enter the guest (hardware reason {reason:#x}){}",
        at(*rip)
    )]
    FailEntry {
        /// The vCPU id.
        vcpu: u32,
        /// The hardware's reason code.
        reason: u64,
        /// The guest instruction pointer, if it could be read.
        rip: Option<u64>,
    },
    /// The hypervisor hit an internal error, usually an instruction it cannot emulate.
    #[error("vcpu {vcpu}: hypervisor internal error: {}{}", internal_error(*suberror), at(*rip))]
    InternalError {
        /// The vCPU id.
        vcpu: u32,
        /// The backend's sub-error.
        suberror: u32,
        /// The guest instruction pointer, if it could be read.
        rip: Option<u64>,
    },
    /// The guest reported a crash through the hypervisor.
    #[error("vcpu {vcpu}: the guest crashed")]
    GuestCrashed {
        /// The vCPU id.
        vcpu: u32,
    },
    /// An exit the VMM does not handle.
    #[error("vcpu {vcpu}: unexpected exit {exit}{}", at(*rip))]
    UnexpectedExit {
        /// The vCPU id.
        vcpu: u32,
        /// The exit.
        exit: String,
        /// The guest instruction pointer, if it could be read.
        rip: Option<u64>,
    },
}

fn at(rip: Option<u64>) -> String {
    rip.map(|rip| format!(" at rip {rip:#x}"))
        .unwrap_or_default()
}

fn internal_error(suberror: u32) -> String {
    match suberror {
        1 => "emulation failure (an instruction the hypervisor cannot emulate)".to_owned(),
        2 => "simultaneous exceptions".to_owned(),
        3 => "delivery event failure".to_owned(),
        n => format!("suberror {n}"),
    }
}
