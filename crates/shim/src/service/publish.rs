//! Where the task service's events go: containerd's event service, or a recorder in tests.

use containerd_shim::publisher::RemotePublisher;
use protobuf::MessageDyn;

/// Sends events to containerd.
pub trait Publish: Send + Sync {
    /// Sends one event; failures are logged, never fatal.
    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>);
}

/// containerd's event service.
pub struct ContainerdPublisher {
    publisher: RemotePublisher,
    namespace: String,
}

impl std::fmt::Debug for ContainerdPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdPublisher")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl ContainerdPublisher {
    /// Publishes to containerd in `namespace`.
    pub fn new(publisher: RemotePublisher, namespace: &str) -> Self {
        Self {
            publisher,
            namespace: namespace.to_owned(),
        }
    }
}

impl Publish for ContainerdPublisher {
    fn publish(&self, topic: &str, event: Box<dyn MessageDyn>) {
        let c = ttrpc::context::with_timeout(5_000_000_000);
        if let Err(e) = self.publisher.publish(c, topic, &self.namespace, event) {
            tracing::warn!(topic, error = %e, "cannot publish event");
        }
    }
}
