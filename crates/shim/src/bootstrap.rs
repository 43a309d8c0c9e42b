//! The shim v2 process protocol, on containerd-shim 0.12's flags, logger and publisher:
//!
//! * `start`: spawn the long-lived server (this binary without an action) in the bundle, wait
//!   until it listens, and print its address: a bare address to a legacy (flags) caller, which
//!   is what containerd 1.6/1.7 read (and 2.x accept, then speaking task v2); a
//!   `BootstrapResult` (task v3) to a containerd 2.3+ that sent `BootstrapParams` on stdin.
//!   Containers of one CRI pod get the pod sandbox's shim (and so its VM).
//! * serve (no action): the ttrpc server with the task service registered as both
//!   `containerd.task.v2.Task` and `containerd.task.v3.Task`.
//! * `delete`: see [`crate::delete`].

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context};
use containerd_shim::bootstrap::{BootstrapParams, BootstrapResult};
use containerd_shim::protos::shim::shim_ttrpc::create_task;
use containerd_shim::protos::types::introspection::RuntimeInfo;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, Flags};
use protobuf::well_known_types::any::Any;
use protobuf::Message;

use crate::config::CONFIG_ENV;
use crate::mounts::HostMounts;
use crate::options;
use crate::sandbox::lcow::LcowLauncher;
use crate::service::{ContainerdPublisher, Service};
use crate::sys;

/// The runtime's name in containerd.
pub const RUNTIME_ID: &str = "io.containerd.lcow.v1";
/// The task service names served (containerd 1.6/1.7 call v2, 2.x v3).
pub const TASK_SERVICES: [&str; 2] = ["containerd.task.v2.Task", "containerd.task.v3.Task"];
const TTRPC_ADDRESS: &str = "TTRPC_ADDRESS";
/// The most `start` reads from stdin (containerd's own bound).
const MAX_INPUT: u64 = 10 << 20;
/// The server's line to `start` once it listens.
const READY: &str = "lcow-shim-ready";
/// How long `start` gives a server that said READY to answer.
const LISTEN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// The most `start` reads of the server's line.
const MAX_SAID: u64 = 64 << 10;

/// How `start` was called, which decides the reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// Flags and environment; reply with the bare address.
    Legacy,
    /// containerd 2.3+ with `BootstrapParams`; reply with a `BootstrapResult`.
    Bootstrap(Box<BootstrapParams>),
}

/// Tells the two callers apart from what arrived on stdin.
pub fn caller(input: &[u8], flags: &Flags) -> Caller {
    match BootstrapParams::parse_from_bytes(input) {
        Ok(p)
            if !input.is_empty() && p.instance_id == flags.id && p.namespace == flags.namespace =>
        {
            Caller::Bootstrap(Box::new(p))
        }
        _ => Caller::Legacy,
    }
}

/// The reply to `start` for `caller`.
pub fn start_reply(address: &str, caller: &Caller) -> anyhow::Result<Vec<u8>> {
    match caller {
        Caller::Legacy => Ok(address.as_bytes().to_vec()),
        Caller::Bootstrap(_) => Ok(BootstrapResult {
            version: 3,
            address: address.to_owned(),
            protocol: "ttrpc".to_owned(),
            ..Default::default()
        }
        .write_to_bytes()?),
    }
}

/// The runtime options containerd sent to `start`: the whole stdin for a legacy caller, an
/// extension of the bootstrap parameters otherwise.
pub fn runtime_options(input: &[u8], caller: &Caller) -> Option<Any> {
    match caller {
        Caller::Legacy => Any::parse_from_bytes(input)
            .ok()
            .filter(|a| !a.type_url.is_empty()),
        Caller::Bootstrap(p) => p
            .extensions
            .iter()
            .filter_map(|e| e.value.as_ref())
            .find(|a| a.type_url.ends_with("runtimeoptions.v1.Options"))
            .cloned(),
    }
}

/// Logs, once per service, which task API containerd calls (v2: containerd 1.6/1.7, or a 2.x
/// given a bare address; v3: containerd 2.x).
struct Announce {
    service: &'static str,
    said: Arc<std::sync::atomic::AtomicBool>,
    inner: Box<dyn ttrpc::MethodHandler + Send + Sync>,
}

impl ttrpc::MethodHandler for Announce {
    fn handler(&self, ctx: ttrpc::TtrpcContext, req: ttrpc::Request) -> ttrpc::Result<()> {
        if !self.said.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::info!(
                task_api = self.service,
                "containerd calls the task API {}",
                self.service
            );
        }
        self.inner.handler(ctx, req)
    }
}

/// The methods of `service` under both task service names.
pub fn task_methods(
    service: Arc<Service>,
) -> HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    let v3 = create_task(service.clone());
    let v2 = create_task(service);
    let mut all: HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> = HashMap::new();
    for (api, methods) in [(TASK_SERVICES[0], v2), (TASK_SERVICES[1], v3)] {
        let said = Arc::default();
        for (name, inner) in methods {
            let handler = Announce {
                service: api,
                said: Arc::clone(&said),
                inner,
            };
            all.insert(name.replace(TASK_SERVICES[1], api), Box::new(handler));
        }
    }
    all
}

/// The id whose shim a new container joins: its CRI pod sandbox, else itself.
pub fn grouping(bundle: &Path, id: &str) -> String {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return id.to_owned();
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return id.to_owned();
    };
    let a = &spec["annotations"];
    match (
        a["io.kubernetes.cri.container-type"].as_str(),
        a["io.kubernetes.cri.sandbox-id"].as_str(),
    ) {
        (Some("container"), Some(sandbox)) if lcow_protocol::valid_id(sandbox) => {
            sandbox.to_owned()
        }
        _ => id.to_owned(),
    }
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let stdin = std::io::stdin();
    let mut input = Vec::new();
    if !stdin.is_terminal() {
        stdin
            .lock()
            .take(MAX_INPUT)
            .read_to_end(&mut input)
            .context("cannot read stdin")?;
    }
    Ok(input)
}

/// `start`: see the module doc.
pub fn start(flags: &Flags) -> anyhow::Result<()> {
    let input = read_stdin()?;
    let caller = caller(&input, flags);
    let ttrpc_address = match &caller {
        Caller::Bootstrap(p) => p.containerd_ttrpc_address.clone(),
        Caller::Legacy => std::env::var(TTRPC_ADDRESS).unwrap_or_default(),
    };
    if ttrpc_address.is_empty() {
        bail!("{TTRPC_ADDRESS} is not set: start must be called by containerd");
    }
    let bundle = std::env::current_dir().context("cannot read the working directory")?;
    let group = grouping(&bundle, &flags.id);
    let address = containerd_shim::socket_address(&flags.address, &flags.namespace, &group);
    if sys::server_listening(&address) {
        tracing::info!(%address, "joining the running shim of {group}");
    } else {
        sys::remove_stale(&address);
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let mut cmd = Command::new(exe);
        cmd.args(["-namespace", &flags.namespace, "-id", &flags.id])
            .args(["-address", &flags.address, "-socket", &address])
            .env(TTRPC_ADDRESS, &ttrpc_address)
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        sys::detach(&mut cmd);
        if flags.debug {
            cmd.arg("-debug");
        }
        // containerd passes the container's runtime options to `start` (not to Create): their
        // ConfigPath reaches the server as $LCOW_CONFIG.
        if let Some(path) = runtime_options(&input, &caller).and_then(|a| options::config_path(&a))
        {
            tracing::info!(config = %path.display(), "configuration from the runtime options");
            cmd.env(CONFIG_ENV, path);
        }
        let mut child = cmd.spawn().context("cannot spawn the shim server")?;
        // The server writes one line: READY once it listens, or why it could not. (Not the
        // pipe's end: under Wine a process's stdout stays open after it closes the handle.)
        let mut said = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = std::io::BufReader::new(out.take(MAX_SAID)).read_line(&mut said);
        }
        if said.trim_end() != READY || !answers_soon(&address) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the shim server did not start: {}", said.trim());
        }
    }
    containerd_shim::util::write_address(&address)
        .with_context(|| format!("cannot write the address file in {}", bundle.display()))?;
    let reply = start_reply(&address, &caller)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&reply)?;
    out.flush()?;
    Ok(())
}

/// Whether the server at `address` answers within [`LISTEN_WAIT`] (a ttrpc server on a named
/// pipe makes its first pipe instance in its own thread, just after it says READY).
fn answers_soon(address: &str) -> bool {
    let deadline = std::time::Instant::now() + LISTEN_WAIT;
    loop {
        if sys::server_listening(address) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `-info`: what the runtime is, for containerd 2.x.
pub fn info() -> anyhow::Result<()> {
    let info = RuntimeInfo {
        name: RUNTIME_ID.to_owned(),
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&info.write_to_bytes()?)?;
    out.flush()?;
    Ok(())
}

/// The server: runs until Shutdown. Until it listens, an error is also written to stdout,
/// where `start` reads it (the server's stderr goes nowhere).
pub fn serve(flags: &Flags) -> anyhow::Result<()> {
    let mut released = false;
    let result = serve_until_shutdown(flags, &mut released);
    if let (Err(e), false) = (&result, released) {
        println!("{e:#}");
    }
    result
}

fn serve_until_shutdown(flags: &Flags, released: &mut bool) -> anyhow::Result<()> {
    if flags.socket.is_empty() {
        bail!("no -socket given: the server is started by `start`, not by hand");
    }
    if let Err(e) = containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)
    {
        eprintln!("containerd-shim-lcow-v1: no log fifo, logging to stderr: {e}");
    }
    let ttrpc_address = std::env::var(TTRPC_ADDRESS).context("TTRPC_ADDRESS is not set")?;
    let publisher = RemotePublisher::new(&ttrpc_address)
        .with_context(|| format!("cannot connect to containerd's events at {ttrpc_address}"))?;
    let exit = Arc::new(ExitSignal::default());
    let host: Arc<dyn HostMounts> = Arc::new(sys::Mounts::default());
    let service = Arc::new(Service::new(
        &flags.namespace,
        Arc::new(ContainerdPublisher::new(publisher, &flags.namespace)),
        Arc::clone(&exit),
        Arc::new(LcowLauncher::new(Arc::clone(&host))),
        host,
    ));
    let address = flags.socket.clone();
    let server = sys::listen(ttrpc::Server::new(), &address)?;
    let mut server = server.register_service(task_methods(service));
    server.start().context("cannot start the ttrpc server")?;
    // Release `start`, which reads our stdout's first line.
    println!("{READY}");
    sys::release_start();
    *released = true;
    tracing::info!(socket = %address, "serving task v2 and v3");
    exit.wait();
    server.shutdown();
    sys::remove_listener(&address);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        Flags {
            id: "c1".into(),
            namespace: "default".into(),
            ..Default::default()
        }
    }

    #[test]
    fn test_legacy_caller_gets_bare_address() {
        let c = caller(b"", &flags());
        assert_eq!(c, Caller::Legacy);
        assert_eq!(start_reply("unix:///run/x", &c).unwrap(), b"unix:///run/x");
    }

    #[test]
    fn test_bootstrap_caller_gets_v3_result() {
        let p = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "default".into(),
            containerd_ttrpc_address: "/run/c.sock.ttrpc".into(),
            ..Default::default()
        };
        let c = caller(&p.write_to_bytes().unwrap(), &flags());
        assert!(matches!(c, Caller::Bootstrap(_)));
        let r = BootstrapResult::parse_from_bytes(&start_reply("unix:///x", &c).unwrap()).unwrap();
        assert_eq!((r.version, r.address.as_str()), (3, "unix:///x"));
    }

    #[test]
    fn test_runtime_options_on_stdin_are_legacy() {
        // A packed Any (runtime options) must not be taken for BootstrapParams.
        let any = protobuf::well_known_types::any::Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: vec![0x12, 1, b'x'],
            ..Default::default()
        };
        assert_eq!(
            caller(&any.write_to_bytes().unwrap(), &flags()),
            Caller::Legacy
        );
    }

    #[test]
    fn test_runtime_options_config_path_from_legacy_stdin() {
        let mut value = vec![0x12, 6];
        value.extend_from_slice(b"/x.tml");
        let any = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value,
            ..Default::default()
        };
        let input = any.write_to_bytes().unwrap();
        let got = runtime_options(&input, &Caller::Legacy).unwrap();
        assert_eq!(
            options::config_path(&got).unwrap(),
            std::path::PathBuf::from("/x.tml")
        );
        assert!(runtime_options(b"", &Caller::Legacy).is_none());
    }

    #[test]
    fn test_grouping_follows_cri_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "c1");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "pod1");
    }
}
