//! FUSE as virtio-fs speaks it: the wire format and the server.
