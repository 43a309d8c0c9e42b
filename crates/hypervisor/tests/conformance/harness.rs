//! The harness the conformance bodies share: guest RAM, a guest builder for real and long mode,
//! and a run loop with hard guards (an exit budget and a watchdog).

use std::alloc::{self, Layout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lcow_hypervisor::x86_64::{DescriptorTable, Regs, Segment};
use lcow_hypervisor::{
    Hypervisor, IoOperation, IoParams, MemSlot, MemoryRegion, Vcpu, VcpuExit, VcpuKick, Vm,
};

/// The vCPU type of a hypervisor.
pub type VcpuOf<H> = <<H as Hypervisor>::Vm as Vm>::Vcpu;

/// A run loop gives up after this many exits.
pub const MAX_EXITS: usize = 256;
/// The watchdog kicks the vCPU after this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The watchdog aborts the test process if a kick does not stop the vCPU within this long.
const ABORT_AFTER: Duration = Duration::from_secs(10);

/// Where real-mode and long-mode payloads are loaded.
pub const CODE: u64 = 0x1000;

/// Page-aligned, zeroed host memory to back a guest memory slot.
pub struct GuestRam {
    ptr: *mut u8,
    layout: Layout,
}

impl GuestRam {
    pub fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: `layout` has a non-zero size (every caller passes whole pages).
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        Self { ptr, layout }
    }

    pub fn size(&self) -> usize {
        self.layout.size()
    }

    /// The region mapping this memory at `guest_address`.
    pub fn region(&self, guest_address: u64, read_only: bool) -> MemoryRegion {
        MemoryRegion {
            guest_address,
            size: self.size() as u64,
            host_address: self.ptr as usize,
            read_only,
        }
    }

    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.size());
        // SAFETY: in bounds (checked); the guest only touches this memory inside `run()` on this
        // thread, so there is no concurrent access, and we hold no references into it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(offset), bytes.len()) }
    }

    pub fn read(&self, offset: usize, len: usize) -> Vec<u8> {
        assert!(offset + len <= self.size());
        let mut out = vec![0; len];
        // SAFETY: as in `write`.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(offset), out.as_mut_ptr(), len) };
        out
    }

    pub fn write_u64(&self, offset: usize, value: u64) {
        self.write(offset, &value.to_le_bytes());
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::dealloc(self.ptr, self.layout) }
    }
}

/// Maps `ram` at `guest_address` and returns the slot.
pub fn map<V: Vm>(vm: &V, ram: &GuestRam, guest_address: u64, read_only: bool) -> MemSlot {
    // SAFETY: `ram` is live, writable memory; every test declares its RAM so that it is dropped
    // after the VM, and reads it only through raw-pointer copies between runs.
    unsafe { vm.add_memory_region(ram.region(guest_address, read_only)) }.unwrap()
}

/// One VM with one vCPU and RAM from guest address 0. Fields drop in order: the vCPU, then the
/// VM (which unmaps the RAM), then the RAM.
pub struct Guest<H: Hypervisor> {
    pub vcpu: VcpuOf<H>,
    pub vm: H::Vm,
    pub ram: GuestRam,
}

impl<H: Hypervisor> Guest<H> {
    /// A VM with `ram_size` bytes at guest address 0 and vCPU 0; with `irqchip`, the in-kernel
    /// interrupt controller and PIT are created first.
    pub fn new(hv: &H, ram_size: usize, irqchip: bool) -> Self {
        let vm = hv.create_vm().unwrap();
        if irqchip {
            vm.create_irq_chip().unwrap();
            vm.create_pit().unwrap();
        }
        let ram = GuestRam::new(ram_size);
        map(&vm, &ram, 0, false);
        let vcpu = vm.create_vcpu(0).unwrap();
        Self { vcpu, vm, ram }
    }

    /// A real-mode guest (32 KiB of RAM; guest addresses from 0x8000 up are unbacked) about to
    /// run `code` at [`CODE`] with CS = DS = ES = SS = 0.
    pub fn real_mode(hv: &H, code: &[u8], irqchip: bool) -> Self {
        let mut guest = Self::new(hv, 0x8000, irqchip);
        guest.ram.write(CODE as usize, code);
        let mut sregs = guest.vcpu.get_sregs().unwrap();
        for seg in [
            &mut sregs.cs,
            &mut sregs.ds,
            &mut sregs.es,
            &mut sregs.fs,
            &mut sregs.gs,
            &mut sregs.ss,
        ] {
            seg.base = 0;
            seg.selector = 0;
        }
        guest.vcpu.set_sregs(&sregs).unwrap();
        guest.set_entry(0);
        guest
    }

    /// A 64-bit guest (1 MiB of RAM) about to run `code` at [`CODE`]: identity-mapped first GiB
    /// (2 MiB pages), flat GDT, CR0/CR3/CR4/EFER for long mode.
    pub fn long_mode(hv: &H, code: &[u8]) -> Self {
        const GDT: u64 = 0x500;
        const PML4: u64 = 0x2000;
        const PDPT: u64 = 0x3000;
        const PD: u64 = 0x4000;
        let mut guest = Self::new(hv, 0x10_0000, false);
        let ram = &guest.ram;
        ram.write(CODE as usize, code);
        // Null, 64-bit code (0x08), data (0x10).
        for (i, desc) in [0, 0x00af_9b00_0000_ffff_u64, 0x00cf_9300_0000_ffff]
            .into_iter()
            .enumerate()
        {
            ram.write_u64(GDT as usize + 8 * i, desc);
        }
        ram.write_u64(PML4 as usize, PDPT | 0x3); // present, writable
        ram.write_u64(PDPT as usize, PD | 0x3);
        for i in 0..512u64 {
            ram.write_u64(PD as usize + 8 * i as usize, (i << 21) | 0x83); // + 2 MiB page
        }

        let code_seg = Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x08,
            type_: 0xb, // execute/read, accessed
            present: true,
            dpl: 0,
            db: false,
            s: true,
            l: true,
            g: true,
            avl: false,
            unusable: false,
        };
        let data_seg = Segment {
            selector: 0x10,
            type_: 0x3, // read/write, accessed
            db: true,
            l: false,
            ..code_seg
        };
        let mut sregs = guest.vcpu.get_sregs().unwrap();
        sregs.cs = code_seg;
        sregs.ds = data_seg;
        sregs.es = data_seg;
        sregs.fs = data_seg;
        sregs.gs = data_seg;
        sregs.ss = data_seg;
        sregs.gdt = DescriptorTable {
            base: GDT,
            limit: 23,
        };
        sregs.cr3 = PML4;
        sregs.cr4 = 1 << 5; // PAE
        sregs.cr0 = 0x8000_0033; // PG | NE | ET | MP | PE
        sregs.efer = 0x500; // LMA | LME
        guest.vcpu.set_sregs(&sregs).unwrap();
        guest.set_entry(0x8000);
        guest
    }

    fn set_entry(&mut self, rsp: u64) {
        let regs = Regs {
            rip: CODE,
            rflags: 0x2,
            rsp,
            ..Default::default()
        };
        self.vcpu.set_regs(&regs).unwrap();
    }
}

/// One guest I/O access as the run loop saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `out` to a port.
    Out(u64, Vec<u8>),
    /// `in` from a port, of this many bytes.
    In(u64, usize),
    /// A write to unbacked guest physical memory.
    MmioWrite(u64, Vec<u8>),
    /// A read of unbacked guest physical memory, of this many bytes.
    MmioRead(u64, usize),
}

/// When [`run_guest`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// On [`VcpuExit::Hlt`].
    Hlt,
    /// After the guest writes to this port.
    Out(u64),
}

/// Kicks a vCPU if the test takes longer than [`TIMEOUT`], and aborts the process if even that
/// does not stop it. Dropping it disarms it.
pub struct Watchdog {
    fired: Arc<AtomicBool>,
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    pub fn start(kicker: Arc<dyn VcpuKick>) -> Self {
        let (disarm, armed) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let thread = thread::spawn(move || {
            if armed.recv_timeout(TIMEOUT) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            flag.store(true, Ordering::SeqCst);
            kicker.kick();
            if armed.recv_timeout(ABORT_AFTER) == Err(RecvTimeoutError::Timeout) {
                eprintln!("FAIL: the vcpu did not stop {ABORT_AFTER:?} after a kick; aborting");
                std::process::abort();
            }
        });
        Self {
            fired,
            disarm: Some(disarm),
            thread: Some(thread),
        }
    }

    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.disarm.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn record(
    log: &mut Vec<Access>,
    mmio: bool,
    params: IoParams<'_>,
    respond: &mut dyn FnMut(&Access) -> u64,
) {
    match params.operation {
        IoOperation::Write(data) => {
            let access = if mmio {
                Access::MmioWrite(params.address, data.to_vec())
            } else {
                Access::Out(params.address, data.to_vec())
            };
            respond(&access);
            log.push(access);
        }
        IoOperation::Read(data) => {
            let access = if mmio {
                Access::MmioRead(params.address, data.len())
            } else {
                Access::In(params.address, data.len())
            };
            let value = respond(&access).to_le_bytes();
            let n = data.len().min(value.len());
            data[..n].copy_from_slice(&value[..n]);
            log.push(access);
        }
    }
}

/// Runs the guest until `until`, completing each I/O exit with `respond` (called for every
/// access; its value answers reads), and returns the accesses in order. Panics on any other exit,
/// after [`MAX_EXITS`] exits, or when the watchdog fires.
pub fn run_guest<V: Vcpu>(
    vcpu: &mut V,
    until: Until,
    respond: &mut dyn FnMut(&Access) -> u64,
) -> Vec<Access> {
    let watchdog = Watchdog::start(vcpu.kicker());
    let mut log = Vec::new();
    for _ in 0..MAX_EXITS {
        let exit = vcpu.run().unwrap();
        match exit {
            VcpuExit::Io => {
                vcpu.handle_io(&mut |p| record(&mut log, false, p, respond))
                    .unwrap();
                if matches!((until, log.last()), (Until::Out(port), Some(Access::Out(p, _))) if *p == port)
                {
                    return log;
                }
            }
            VcpuExit::Mmio => vcpu
                .handle_mmio(&mut |p| record(&mut log, true, p, respond))
                .unwrap(),
            VcpuExit::Hlt if until == Until::Hlt => return log,
            VcpuExit::Intr if watchdog.fired() => {
                panic!("guest still running after {TIMEOUT:?}; accesses: {log:x?}")
            }
            VcpuExit::Intr => {}
            other => panic!("unexpected exit {other:?}; accesses: {log:x?}"),
        }
    }
    panic!("guest did not finish within {MAX_EXITS} exits; accesses: {log:x?}")
}

/// [`run_guest`] until `hlt`, answering every read with `answers` (address → value; unknown
/// addresses panic).
pub fn run_to_hlt<V: Vcpu>(vcpu: &mut V, answers: &[(u64, u64)]) -> Vec<Access> {
    run_guest(vcpu, Until::Hlt, &mut |access| match access {
        Access::In(addr, _) | Access::MmioRead(addr, _) => answers
            .iter()
            .find(|(a, _)| a == addr)
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("unexpected read of {addr:#x}")),
        _ => 0,
    })
}
