//! Irq events on WHP ([`crate::VmEvents::register_irq_event`]): one thread per partition waits
//! on every registered [`Event`] and pulses its IRQ line through the userspace I/O APIC, as
//! KVM's irqfd does in the kernel. (WHP's triggers inject a fixed `WHV_INTERRUPT_CONTROL`; the
//! guest reprograms the I/O APIC and level lines need its remote IRR, so a trigger cannot stand
//! in for a pin.)
//!
//! The thread waits on its own clones of the events, rebuilt whenever the set changes, so an
//! event the caller unregisters and closes is never waited on after it is gone.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use lcow_base::windows::MAXIMUM_WAIT_OBJECTS;
use lcow_base::{AsRawDescriptor, Event, WaitContext};

use super::irq::Interrupts;
use crate::{Error, Result};

/// The token of the control event (registered events use their index).
const CONTROL: u32 = u32::MAX;

struct Registered {
    /// The caller's event's handle value, to find it again on unregister.
    key: usize,
    /// Our clone, which the thread waits on.
    event: Event,
    irq: u32,
}

struct Shared {
    registered: Mutex<Vec<Registered>>,
    control: Event,
    stop: AtomicBool,
}

/// The registered irq events of a partition and the thread that serves them.
pub(crate) struct IrqEvents {
    shared: Arc<Shared>,
    interrupts: Arc<Interrupts>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl IrqEvents {
    pub(crate) fn new(interrupts: Arc<Interrupts>) -> io::Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared {
                registered: Mutex::new(Vec::new()),
                control: Event::new()?,
                stop: AtomicBool::new(false),
            }),
            interrupts,
            thread: Mutex::new(None),
        })
    }

    /// Makes every signal of `event` pulse `irq`.
    pub(crate) fn register(&self, event: &Event, irq: u32) -> Result<()> {
        let failed = |source| Error::RegisterIrqEvent { irq, source };
        {
            let mut registered = self
                .shared
                .registered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // One wait slot is the control event's.
            if registered.len() + 1 >= MAXIMUM_WAIT_OBJECTS {
                return Err(Error::TooManyEntries {
                    what: "irq event",
                    count: registered.len() + 1,
                });
            }
            registered.push(Registered {
                key: event.as_raw_descriptor() as usize,
                event: event.try_clone().map_err(failed)?,
                irq,
            });
        }
        self.start().map_err(failed)?;
        self.shared.control.signal().map_err(failed)
    }

    /// Undoes [`IrqEvents::register`].
    pub(crate) fn unregister(&self, event: &Event, irq: u32) -> Result<()> {
        let key = event.as_raw_descriptor() as usize;
        let removed = {
            let mut registered = self
                .shared
                .registered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let before = registered.len();
            registered.retain(|r| !(r.key == key && r.irq == irq));
            before != registered.len()
        };
        if !removed {
            return Err(Error::UnregisterIrqEvent {
                irq,
                source: io::Error::new(io::ErrorKind::NotFound, "event not registered"),
            });
        }
        self.shared
            .control
            .signal()
            .map_err(|source| Error::UnregisterIrqEvent { irq, source })
    }

    fn start(&self) -> io::Result<()> {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.is_none() {
            let shared = self.shared.clone();
            let interrupts = self.interrupts.clone();
            *thread = Some(
                thread::Builder::new()
                    .name("whp-irq-events".to_owned())
                    .spawn(move || serve(&shared, &interrupts))?,
            );
        }
        Ok(())
    }
}

impl Drop for IrqEvents {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.control.signal() {
            tracing::warn!(error = %e, "cannot stop the irq event thread");
            return;
        }
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::warn!("the irq event thread panicked");
            }
        }
    }
}

/// The thread: waits on a snapshot of the registered events, pulses the line of each that
/// fired, and takes a new snapshot when the control event says the set changed.
fn serve(shared: &Shared, interrupts: &Interrupts) {
    'rebuild: loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = shared.control.reset() {
            tracing::error!(error = %e, "irq event thread: cannot reset its control event");
            return;
        }
        let snapshot: Vec<(Event, u32)> = {
            let registered = shared
                .registered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            registered
                .iter()
                .filter_map(|r| r.event.try_clone().ok().map(|e| (e, r.irq)))
                .collect()
        };
        let ctx = match build(&shared.control, &snapshot) {
            Ok(ctx) => ctx,
            Err(e) => {
                tracing::error!(error = %e, "irq event thread: cannot wait on its events");
                return;
            }
        };
        loop {
            let ready = match ctx.wait(MAXIMUM_WAIT_OBJECTS) {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::error!(error = %e, "irq event thread: wait failed");
                    return;
                }
            };
            for r in ready {
                if r.token == CONTROL {
                    continue 'rebuild;
                }
                let Some((event, irq)) = snapshot.get(r.token as usize) else {
                    continue;
                };
                if let Err(e) = event.reset() {
                    tracing::warn!(irq, error = %e, "irq event: reset failed");
                }
                let pulse = interrupts
                    .set_irq(*irq, true)
                    .and_then(|()| interrupts.set_irq(*irq, false));
                if let Err(e) = pulse {
                    tracing::warn!(irq, error = %io::Error::from(e), "irq event: delivery failed");
                }
            }
        }
    }
}

fn build(control: &Event, snapshot: &[(Event, u32)]) -> io::Result<WaitContext<u32>> {
    let ctx = WaitContext::new()?;
    ctx.add(control, CONTROL)?;
    for (index, (event, _)) in snapshot.iter().enumerate() {
        ctx.add(event, index as u32)?;
    }
    Ok(ctx)
}
