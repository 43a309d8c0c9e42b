//! The task service against a fake VM ([`FakeSandbox`]) and a fake mount table
//! ([`FakeMounts`]): no VM, no root, no KVM. [`Harness`] holds one service and its fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use containerd_shim::api::{
    CreateTaskRequest, DeleteRequest, DeleteResponse, ExecProcessRequest, KillRequest,
    StartRequest, StateRequest, StateResponse, WaitRequest,
};
use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::topics;
use containerd_shim::ExitSignal;
use protobuf::well_known_types::any::Any;
use protobuf::MessageDyn;

use super::{lock, Publish, Service};
use crate::error::ShimError;
use crate::mounts::fake::FakeMounts;
use crate::sandbox::fake::{FakeLauncher, FakeSandbox};

mod calls;
mod cleanup;
mod lifecycle;
mod vm;

/// How long a test waits for something asynchronous (a waiter thread's event).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One published event.
pub struct Event {
    pub topic: String,
    pub message: Box<dyn MessageDyn>,
}

/// Records events in order.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    changed: Condvar,
}

impl Publish for Recorder {
    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        lock(&self.events).push(Event {
            topic: topic.to_owned(),
            message: event,
        });
        self.changed.notify_all();
    }
}

impl Recorder {
    /// The topics so far.
    pub fn topics(&self) -> Vec<String> {
        lock(&self.events).iter().map(|e| e.topic.clone()).collect()
    }

    /// The TaskExit events so far, as (id, status).
    pub fn exits(&self) -> Vec<(String, u32)> {
        lock(&self.events)
            .iter()
            .filter_map(|e| e.message.downcast_ref::<TaskExit>())
            .map(|e| (e.id.clone(), e.exit_status))
            .collect()
    }

    /// Waits until `n` TaskExit events were published.
    pub fn wait_exits(&self, n: usize) -> Vec<(String, u32)> {
        let deadline = Instant::now() + PATIENCE;
        let mut events = lock(&self.events);
        loop {
            let exits = events
                .iter()
                .filter(|e| e.topic == topics::TASK_EXIT_EVENT_TOPIC)
                .count();
            if exits >= n {
                drop(events);
                return self.exits();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {n} TaskExit within {PATIENCE:?}: {:?}",
                { events.iter().map(|e| e.topic.clone()).collect::<Vec<_>>() }
            );
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
    }

    /// Waits until an event of `topic` was published.
    pub fn wait_topic(&self, topic: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut events = lock(&self.events);
        while !events.iter().any(|e| e.topic == topic) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {topic} within {PATIENCE:?}");
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
    }
}

/// A service, its fakes, and a directory for bundles and the VM's state.
pub struct Harness {
    pub service: Arc<Service>,
    pub events: Arc<Recorder>,
    pub exit: Arc<ExitSignal>,
    pub launcher: Arc<FakeLauncher>,
    pub host: Arc<FakeMounts>,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(FakeMounts::default());
        let sandbox = Arc::new(FakeSandbox::new(
            &dir.path().join("state"),
            Arc::clone(&host),
        ));
        let launcher = Arc::new(FakeLauncher::new(sandbox));
        let events = Arc::new(Recorder::default());
        let exit = Arc::new(ExitSignal::default());
        let service = Arc::new(Service::new(
            "default",
            events.clone(),
            Arc::clone(&exit),
            launcher.clone(),
            host.clone(),
        ));
        Self {
            service,
            events,
            exit,
            launcher,
            host,
            dir,
        }
    }

    pub fn vm(&self) -> &FakeSandbox {
        &self.launcher.sandbox
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A bundle for `id` with `spec` as its config.json.
    pub fn bundle(&self, id: &str, spec: &serde_json::Value) -> PathBuf {
        let bundle = self.dir.path().join("bundles").join(id);
        std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
        std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
        bundle
    }

    pub fn create_request(&self, id: &str, spec: &serde_json::Value) -> CreateTaskRequest {
        CreateTaskRequest {
            id: id.to_owned(),
            bundle: self.bundle(id, spec).display().to_string(),
            rootfs: vec![containerd_shim_protos::api::Mount {
                type_: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    "lowerdir=/l".into(),
                    "upperdir=/u".into(),
                    "workdir=/w".into(),
                ],
                ..Default::default()
            }],
            stdout: "/fifo/out".into(),
            ..Default::default()
        }
    }

    /// Creates container `id` with an empty spec; its pid.
    pub fn create(&self, id: &str) -> u32 {
        let req = self.create_request(id, &serde_json::json!({"process": {"args": ["sh"]}}));
        self.service.do_create(&req).unwrap().pid
    }

    pub fn start(&self, id: &str, exec_id: &str) -> Result<u32, ShimError> {
        self.service
            .do_start(&StartRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..Default::default()
            })
            .map(|r| r.pid)
    }

    pub fn exec(&self, id: &str, exec_id: &str) -> Result<(), ShimError> {
        self.service.do_exec(&ExecProcessRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            spec: Some(Any {
                value: br#"{"args":["ls"],"cwd":"/"}"#.to_vec(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
    }

    pub fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<(), ShimError> {
        self.service.do_kill(&KillRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            signal,
            all,
            ..Default::default()
        })
    }

    pub fn delete(&self, id: &str, exec_id: &str) -> Result<DeleteResponse, ShimError> {
        self.service.do_delete(&DeleteRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        })
    }

    pub fn state(&self, id: &str, exec_id: &str) -> Result<StateResponse, ShimError> {
        self.service.do_state(&StateRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        })
    }

    /// Wait of `id`/`exec_id` in a thread; its answer arrives on the receiver.
    fn wait_in_thread(
        &self,
        id: &str,
        exec_id: &str,
    ) -> std::sync::mpsc::Receiver<Result<u32, ShimError>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let service = Arc::clone(&self.service);
        let req = WaitRequest {
            id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        };
        std::thread::spawn(move || {
            let _ = tx.send(service.do_wait(&req).map(|r| r.exit_status));
        });
        rx
    }

    /// Wait, in a thread, returning its status within [`PATIENCE`] or failing the test.
    pub fn wait(&self, id: &str, exec_id: &str) -> Result<u32, ShimError> {
        self.wait_in_thread(id, exec_id)
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| {
                panic!("Wait of {id}/{exec_id:?} did not return within {PATIENCE:?}")
            })
    }

    /// Whether Wait is still blocked after a short while.
    pub fn wait_blocks(&self, id: &str, exec_id: &str) -> bool {
        self.wait_in_thread(id, exec_id)
            .recv_timeout(Duration::from_millis(200))
            .is_err()
    }

    /// Whether anything of container `id` is left on the host: its mounts or its directory.
    pub fn host_leftovers(&self, id: &str) -> Vec<PathBuf> {
        let dir = self.state_dir().join("shared").join(id);
        let mut left = self.host.mounted_beneath(&dir);
        if dir.exists() {
            left.push(dir);
        }
        left
    }
}

/// The ttrpc code an error becomes.
pub fn code(e: ShimError) -> ttrpc::Code {
    match ttrpc::Error::from(e) {
        ttrpc::Error::RpcStatus(s) => s.code(),
        other => panic!("{other:?}"),
    }
}

/// `path` relative to `base`, as a string (for readable assertions).
pub fn rel(path: &Path, base: &Path) -> String {
    // With `/` on every host, so expectations read the same on Windows.
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
        .replace('\\', "/")
}
