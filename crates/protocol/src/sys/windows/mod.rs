//! Windows: hybrid vsock as one named pipe per guest port (docs/windows.md).

pub(crate) mod client;
pub(crate) mod hybrid;
