//! Linux: hybrid vsock over the VMM's unix socket.

pub(crate) mod client;
pub(crate) mod hybrid;
