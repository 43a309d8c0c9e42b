//! The vsock device end to end on mock guest memory: a fake driver posts rx buffers and tx
//! packets in split rings it lays out itself, and the worker's loop is driven pass by pass on
//! the test thread. Host clients are real unix streams in a temporary directory on Linux
//! (`flows`, `hostile`) and real named pipes on Windows (`pipes`, run under Wine).

#[cfg(target_os = "linux")]
mod flows;
mod harness;
#[cfg(target_os = "linux")]
mod hostile;
#[cfg(target_os = "linux")]
mod loopback;
#[cfg(windows)]
mod pipes;
