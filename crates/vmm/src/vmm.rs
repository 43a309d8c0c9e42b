//! Building and running one VM: guest memory, the in-kernel irqchip and PIT, the kernel and
//! initramfs, the legacy devices on their buses, the virtio devices and their threads, one
//! thread per vCPU and the halt monitor, until the VM ends.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use lcow_devices::i8042::{I8042_BASE, I8042_PORTS, KBD_IRQ};
use lcow_devices::serial::{Discard, COM1_IRQ, COM1_PORT, UART_PORTS};
use lcow_devices::virtio_mmio::SlotAllocator;
use lcow_devices::{Bus, I8042Device, IrqTrigger, SerialDevice};
use lcow_hypervisor::{Capability, Hypervisor, Vcpu, Vm, VmEvents};
use vm_memory::GuestMemoryMmap;

use crate::boot::{self, linux, pvh, KernelEntry};
use crate::cmdline::{build_cmdline, cmdline_bytes};
use crate::config::{Console, VmConfig, MAX_VCPUS};
use crate::cpuid::offer_tsc_deadline;
pub use crate::error::VmmError;
use crate::memory::{create_guest_memory, e820_map, low_ram_end, map_into_vm};
use crate::monitor::{run_halt_monitor, ExitReason, MonitoredVcpu, VcpuShared, VmState};
use crate::mptable;
use crate::panic_watch::PanicWatch;
use crate::vcpu::{configure_vcpu, run_vcpu, VcpuContext, VcpuSetup};
use crate::virtio::{attach_devices, plan_slots, DeviceThreads};

/// Boots `config` on this host's hypervisor (KVM on Linux) and runs it until it ends.
pub fn run(config: &VmConfig) -> Result<ExitReason, VmmError> {
    crate::sys::run(config)
}

fn console_sink(console: &Console) -> Result<Box<dyn Write + Send>, VmmError> {
    Ok(match console {
        Console::Stdout => Box::new(io::stdout()),
        Console::Off => Box::new(Discard),
        Console::File(path) => {
            Box::new(File::create(path).map_err(|source| VmmError::OpenConsole {
                path: path.clone(),
                source,
            })?)
        }
    })
}

/// Loads the kernel, initramfs and command line (declaring the virtio devices' `slots`) and
/// writes the boot structures; returns the kernel's entry.
fn prepare_boot(
    mem: &GuestMemoryMmap,
    config: &VmConfig,
    slots: &SlotAllocator,
) -> Result<KernelEntry, VmmError> {
    let kernel = boot::load_kernel(mem, &config.kernel).map_err(VmmError::PrepareBoot)?;
    let cmdline =
        build_cmdline(&config.cmdline, &slots.cmdline_tokens()).map_err(VmmError::BuildCmdline)?;
    let cmdline = cmdline_bytes(&cmdline).map_err(VmmError::BuildCmdline)?;
    let mut top = low_ram_end(config.memory);
    if let KernelEntry::Linux64 { setup_header, .. } = &kernel.entry {
        top = top.min(u64::from(setup_header.initrd_addr_max).saturating_add(1));
    }
    let initrd = config
        .initrd
        .as_deref()
        .map(|path| boot::load_initrd(mem, path, kernel.kernel_end, top))
        .transpose()
        .map_err(VmmError::PrepareBoot)?;
    boot::write_cmdline(mem, &cmdline).map_err(VmmError::PrepareBoot)?;
    let e820 = e820_map(config.memory);
    match &kernel.entry {
        KernelEntry::Pvh { .. } => pvh::write_start_info(mem, &e820, initrd),
        KernelEntry::Linux64 { setup_header, .. } => {
            linux::boot_params_for(*setup_header, cmdline.len() - 1, initrd, &e820)
                .and_then(|params| linux::write_boot_params(mem, &params))
        }
    }
    .map_err(VmmError::PrepareBoot)?;
    boot::cpu_state::write_boot_tables(mem, &kernel.entry).map_err(VmmError::PrepareBoot)?;
    mptable::write(mem, config.vcpus).map_err(VmmError::WriteMptable)?;
    tracing::debug!(entry = ?kernel.entry, ?initrd, "kernel loaded");
    Ok(kernel.entry)
}

/// The legacy devices on the port I/O bus: COM1 and the i8042, whose reset line ends the VM.
fn legacy_devices<V: VmEvents>(
    vm: &V,
    config: &VmConfig,
    state: &Arc<VmState>,
) -> Result<(Bus, Arc<AtomicBool>), VmmError> {
    let irq = |line| {
        vm.irq_event(line)
            .map(IrqTrigger::from_event)
            .map_err(|source| VmmError::RegisterIrq { irq: line, source })
    };
    let (console, panicked) = PanicWatch::new(console_sink(&config.console)?);
    let serial = SerialDevice::new(irq(COM1_IRQ)?, Box::new(console));
    let reset_state = state.clone();
    let i8042 = I8042Device::new(
        Some(irq(KBD_IRQ)?),
        Box::new(move || reset_state.finish(Ok(ExitReason::Reset))),
    );
    let mut pio = Bus::new();
    pio.insert("com1", COM1_PORT, UART_PORTS, Arc::new(Mutex::new(serial)))
        .map_err(VmmError::AddDevice)?;
    pio.insert(
        "i8042",
        I8042_BASE,
        I8042_PORTS,
        Arc::new(Mutex::new(i8042)),
    )
    .map_err(VmmError::AddDevice)?;
    Ok((pio, panicked))
}

/// Boots `config` on `hv` and runs it until it ends.
pub fn run_on<H>(hv: &H, config: &VmConfig) -> Result<ExitReason, VmmError>
where
    H: Hypervisor,
    H::Vm: VmEvents,
{
    let started = Instant::now();
    if !(1..=MAX_VCPUS).contains(&config.vcpus) {
        return Err(VmmError::VcpuCount {
            count: config.vcpus,
            max: MAX_VCPUS,
        });
    }
    // Declared first, dropped last: the VM and its vCPUs are gone before guest memory is.
    let mem = create_guest_memory(config.memory).map_err(VmmError::SetUpMemory)?;
    let vm = hv.create_vm().map_err(VmmError::CreateVm)?;
    vm.create_irq_chip().map_err(VmmError::CreateIrqChip)?;
    if vm.check_capability(Capability::Pit) {
        vm.create_pit().map_err(VmmError::CreateIrqChip)?;
    } else {
        // WHP: no PIT; the guest reads its TSC and APIC timer frequencies instead.
        tracing::debug!("no in-kernel pit");
    }
    map_into_vm(&vm, &mem).map_err(VmmError::SetUpMemory)?;
    let plan = plan_slots(config)?;
    let entry = prepare_boot(&mem, config, &plan.slots)?;

    let state = Arc::new(VmState::new());
    let (pio, panicked) = legacy_devices(&vm, config, &state)?;
    let pio = Arc::new(pio);
    let mut mmio = Bus::new();
    // Declared after the bus: dropped (stopped and joined) first, so a device's last user is
    // the bus, whose end removes the vsock socket.
    let mut device_threads = DeviceThreads::default();
    attach_devices(&vm, &mem, &mut mmio, config, &plan, &mut device_threads)?;
    let mmio = Arc::new(mmio);

    let mut cpuid = hv
        .supported_cpuid()
        .map_err(|source| VmmError::HostSupport {
            what: "cpuid",
            source,
        })?;
    if hv.check_capability(Capability::TscDeadlineTimer) {
        offer_tsc_deadline(&mut cpuid);
    }
    let setup = VcpuSetup {
        cpuid,
        supported_msrs: hv
            .supported_msrs()
            .map_err(|source| VmmError::HostSupport {
                what: "msrs",
                source,
            })?,
        count: config.vcpus,
    };
    let mut vcpus = Vec::new();
    for id in 0..config.vcpus {
        let mut vcpu = vm
            .create_vcpu(id)
            .map_err(|source| VmmError::CreateVcpu { id, source })?;
        let boot = (id == 0).then_some(&entry);
        configure_vcpu(&mut vcpu, &setup, boot).map_err(VmmError::ConfigureVcpu)?;
        vcpus.push(vcpu);
    }
    let monitored: Vec<MonitoredVcpu> = vcpus
        .iter()
        .map(|v| MonitoredVcpu {
            shared: Arc::new(VcpuShared::default()),
            kick: v.kicker(),
        })
        .collect();
    tracing::info!(
        vcpus = config.vcpus,
        memory = config.memory,
        setup_us = started.elapsed().as_micros() as u64,
        "starting the guest"
    );

    let spawned = thread::scope(|scope| -> Result<(), VmmError> {
        let mut result = Ok(());
        for (vcpu, m) in vcpus.into_iter().zip(&monitored) {
            let name = format!("vcpu{}", vcpu.id());
            let ctx = VcpuContext {
                pio: pio.clone(),
                mmio: mmio.clone(),
                state: state.clone(),
                shared: m.shared.clone(),
            };
            let spawn = thread::Builder::new()
                .name(name.clone())
                .spawn_scoped(scope, move || run_vcpu(vcpu, ctx));
            if let Err(source) = spawn {
                result = Err(VmmError::SpawnThread { name, source });
                break;
            }
        }
        if result.is_ok() {
            let spawn = thread::Builder::new()
                .name("halt-monitor".to_owned())
                .spawn_scoped(scope, || run_halt_monitor(&state, &monitored));
            if let Err(source) = spawn {
                result = Err(VmmError::SpawnThread {
                    name: "halt-monitor".to_owned(),
                    source,
                });
            }
        }
        if let Err(e) = result {
            // Stop whatever started, then report.
            state.finish(Ok(ExitReason::PowerOff));
            for m in &monitored {
                m.kick.kick();
            }
            return Err(e);
        }
        state.wait();
        for m in &monitored {
            m.kick.kick();
        }
        Ok(())
    });
    device_threads.stop();
    spawned?;
    let outcome = state.take_outcome();
    tracing::info!(
        ?outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "the vm ended"
    );
    match outcome {
        // A panic ends in a reboot (panic=-1) or a halt: report the panic, not its aftermath.
        Some(Ok(_)) if panicked.load(Ordering::Relaxed) => Ok(ExitReason::GuestPanic),
        Some(Ok(reason)) => Ok(reason),
        Some(Err(e)) => Err(VmmError::Guest(e)),
        // `wait` returns only once an outcome is set, and only this thread takes it.
        None => Ok(ExitReason::PowerOff),
    }
}
