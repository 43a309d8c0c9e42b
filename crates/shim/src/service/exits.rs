//! Reaping: one waiter thread per process records its end and publishes TaskExit, and one
//! thread forwards the VM's own events (OOM kills).
//!
//! A process lost with its VM (the VMM died, the agent stopped answering) ends with status 255
//! and the reason in containerd's log. A container's init is reported last: when it ends, the
//! guest kills the container's other processes, and the init's TaskExit waits (up to
//! [`EXECS_AFTER_INIT`]) for the TaskExit of each exec that was running, as runc's shim orders
//! them.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use containerd_shim::protos::events::task::{TaskExit, TaskOOM};
use containerd_shim::protos::topics;

use super::{lock, Service};
use crate::process::{timestamp, Container, Phase, Process};
use crate::sandbox::{Sandbox, SandboxEvent};

/// How long an init's exit waits for the running execs of its container to end.
const EXECS_AFTER_INIT: Duration = Duration::from_secs(10);

impl Service {
    /// Reaps `p` (a process of `c`) in a thread.
    pub(super) fn spawn_waiter(&self, sb: &Arc<dyn Sandbox>, c: &Arc<Container>, p: &Arc<Process>) {
        let (sb, events) = (Arc::clone(sb), Arc::clone(&self.events));
        let (c, p) = (Arc::clone(c), Arc::clone(p));
        thread::spawn(move || {
            let end = sb.wait(&c.id, &p.exec_id);
            if let Some(reason) = &end.lost {
                tracing::warn!(container_id = %c.id, exec_id = %p.exec_id, status = end.status,
                    reason = %reason, "lost the process with its vm");
            }
            if p.exec_id.is_empty() {
                wait_for_execs(&c);
            }
            let _order = lock(&c.exits);
            let (status, at) = p.set_exited(end.status);
            tracing::info!(container_id = %c.id, exec_id = %p.exec_id, status, "process exited");
            let id = if p.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            };
            events.publish(
                topics::TASK_EXIT_EVENT_TOPIC,
                Box::new(TaskExit {
                    container_id: c.id.clone(),
                    id,
                    pid: p.pid(),
                    exit_status: status,
                    exited_at: Some(timestamp(at)).into(),
                    ..Default::default()
                }),
            );
        });
    }

    /// Forwards the VM's OOM events as TaskOOM.
    pub(super) fn watch_events(&self, sb: &Arc<dyn Sandbox>) {
        let (sb, events) = (Arc::clone(sb), Arc::clone(&self.events));
        thread::spawn(move || {
            while let Some(event) = sb.next_event() {
                match event {
                    SandboxEvent::Oom { container_id } => {
                        tracing::info!(container_id = %container_id, "oom kill");
                        events.publish(
                            topics::TASK_OOM_EVENT_TOPIC,
                            Box::new(TaskOOM {
                                container_id,
                                ..Default::default()
                            }),
                        );
                    }
                }
            }
        });
    }
}

/// Waits until every exec of `c` that was running has ended, for at most
/// [`EXECS_AFTER_INIT`].
fn wait_for_execs(c: &Container) {
    let running: Vec<Arc<Process>> = c
        .execs()
        .values()
        .filter(|p| p.phase() == Phase::Running)
        .cloned()
        .collect();
    let deadline = Instant::now() + EXECS_AFTER_INIT;
    for p in running {
        let left = deadline.saturating_duration_since(Instant::now());
        if !p.wait_timeout(left) {
            tracing::warn!(container_id = %c.id, exec_id = %p.exec_id,
                "an exec outlived its container's init; reporting the init's exit anyway");
        }
    }
}
