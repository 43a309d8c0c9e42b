//! The vsock device end to end on mock guest memory: a fake driver posts rx buffers and tx
//! packets in split rings it lays out itself, host clients are real unix streams in a temporary
//! directory, and the worker's loop is driven pass by pass on the test thread (no threads).

mod flows;
mod harness;
mod hostile;
