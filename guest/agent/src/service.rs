//! The ttrpc service: `lcow.agent.v1.Agent` over the [`Agent`] state.
//!
//! Each RPC is a thin wrapper: it calls the operation, logs a failure, and turns the
//! [`AgentError`] into a ttrpc status in the one place that does that. The two calls that
//! block (WaitProcess, GetEvent) give up when the caller's connection closes or its deadline
//! passes, so an abandoned call does not hold a worker forever or swallow an event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lcow_protocol::agent::{
    CloseStdinRequest, ContainerRequest, CreateContainerRequest, CreateContainerResponse, Empty,
    Event, ExecProcessRequest, ExecProcessResponse, ExitStatus, HelloRequest, HelloResponse,
    ListPidsResponse, ResizePtyRequest, SignalProcessRequest, StartProcessRequest,
    StartProcessResponse, StatsResponse, UpdateContainerRequest, WaitProcessRequest,
};
use lcow_protocol::{agent_ttrpc, PROTOCOL_VERSION};
use ttrpc::{Code, TtrpcContext};

use crate::error::AgentError;
use crate::state::{Agent, ShutdownAction};

/// How long Shutdown waits for its reply to leave before powering off.
const SHUTDOWN_DELAY: Duration = Duration::from_millis(200);

/// The service.
#[derive(Debug)]
pub struct Service {
    agent: Arc<Agent>,
    capabilities: Vec<String>,
    kernel: String,
}

impl Service {
    /// A service over `agent`, announcing `capabilities` in Hello.
    pub fn new(agent: Arc<Agent>, capabilities: Vec<String>) -> Self {
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            agent,
            capabilities,
            kernel,
        }
    }

    fn hello_inner(&self, req: &HelloRequest) -> Result<HelloResponse, AgentError> {
        if req.protocol_version != PROTOCOL_VERSION {
            return Err(AgentError::ProtocolVersion {
                host: req.protocol_version,
                agent: PROTOCOL_VERSION,
            });
        }
        tracing::info!(host = ?crate::quote::quote(&req.host), "host said hello");
        Ok(HelloResponse {
            protocol_version: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: self.capabilities.clone(),
            kernel: self.kernel.clone(),
            ..Default::default()
        })
    }

    fn shutdown_inner(&self) {
        tracing::info!("shutdown requested");
        self.agent.kill_everything();
        self.agent.sys.sync();
        let sys = Arc::clone(&self.agent.sys);
        let action = self.agent.config.shutdown;
        let spawned = std::thread::Builder::new()
            .name("shutdown".into())
            .spawn(move || {
                std::thread::sleep(SHUTDOWN_DELAY);
                sys.sync();
                match action {
                    ShutdownAction::PowerOff => {
                        if let Err(err) = sys.power_off() {
                            tracing::error!(%err, "power off failed");
                        }
                    }
                    ShutdownAction::Exit => std::process::exit(0),
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the shutdown thread");
        }
    }
}

/// Whether the caller of `ctx` is gone: its connection closed or its deadline passed.
fn cancelled(ctx: &TtrpcContext, started: Instant) -> impl Fn() -> bool + '_ {
    let deadline = u64::try_from(ctx.timeout_nano)
        .ok()
        .filter(|n| *n > 0)
        .map(|n| started + Duration::from_nanos(n));
    move || {
        ctx.cancel_rx.try_recv().is_err_and(|e| e.is_disconnected())
            || deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Logs a failed call and converts its error.
fn reply<T>(rpc: &'static str, result: Result<T, AgentError>) -> ttrpc::Result<T> {
    result.map_err(|err| {
        match err.code() {
            Code::INTERNAL => tracing::warn!(rpc, error = %err.message(), "call failed"),
            _ => tracing::debug!(rpc, error = %err.message(), "call refused"),
        }
        err.into_ttrpc()
    })
}

impl agent_ttrpc::Agent for Service {
    fn hello(&self, _ctx: &TtrpcContext, req: HelloRequest) -> ttrpc::Result<HelloResponse> {
        reply("Hello", self.hello_inner(&req))
    }

    fn create_container(
        &self,
        _ctx: &TtrpcContext,
        req: CreateContainerRequest,
    ) -> ttrpc::Result<CreateContainerResponse> {
        let pid = reply("CreateContainer", self.agent.create_container(&req))?;
        Ok(CreateContainerResponse {
            pid,
            ..Default::default()
        })
    }

    fn start_process(
        &self,
        _ctx: &TtrpcContext,
        req: StartProcessRequest,
    ) -> ttrpc::Result<StartProcessResponse> {
        let pid = reply(
            "StartProcess",
            self.agent.start_container(&req.container_id),
        )?;
        Ok(StartProcessResponse {
            pid,
            ..Default::default()
        })
    }

    fn exec_process(
        &self,
        _ctx: &TtrpcContext,
        req: ExecProcessRequest,
    ) -> ttrpc::Result<ExecProcessResponse> {
        let pid = reply("ExecProcess", self.agent.exec_process(&req))?;
        Ok(ExecProcessResponse {
            pid,
            ..Default::default()
        })
    }

    fn signal_process(
        &self,
        _ctx: &TtrpcContext,
        req: SignalProcessRequest,
    ) -> ttrpc::Result<Empty> {
        reply(
            "SignalProcess",
            self.agent
                .signal_process(&req.container_id, &req.exec_id, req.signal, req.all),
        )?;
        Ok(Empty::new())
    }

    fn wait_process(
        &self,
        ctx: &TtrpcContext,
        req: WaitProcessRequest,
    ) -> ttrpc::Result<ExitStatus> {
        let gone = cancelled(ctx, Instant::now());
        reply(
            "WaitProcess",
            self.agent
                .wait_process(&req.container_id, &req.exec_id, &gone),
        )
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        reply(
            "ResizePty",
            self.agent
                .resize_pty(&req.container_id, &req.exec_id, req.width, req.height),
        )?;
        Ok(Empty::new())
    }

    fn close_stdin(&self, _ctx: &TtrpcContext, req: CloseStdinRequest) -> ttrpc::Result<Empty> {
        reply(
            "CloseStdin",
            self.agent.close_stdin(&req.container_id, &req.exec_id),
        )?;
        Ok(Empty::new())
    }

    fn list_pids(
        &self,
        _ctx: &TtrpcContext,
        req: ContainerRequest,
    ) -> ttrpc::Result<ListPidsResponse> {
        let processes = reply("ListPids", self.agent.list_pids(&req.container_id))?;
        Ok(ListPidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        reply("Pause", self.agent.pause(&req.container_id))?;
        Ok(Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        reply("Resume", self.agent.resume(&req.container_id))?;
        Ok(Empty::new())
    }

    fn update_container(
        &self,
        _ctx: &TtrpcContext,
        req: UpdateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        reply(
            "UpdateContainer",
            self.agent.update(&req.container_id, &req.resources),
        )?;
        Ok(Empty::new())
    }

    fn stats(&self, _ctx: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<StatsResponse> {
        reply("Stats", self.agent.stats(&req.container_id))
    }

    fn remove_container(&self, _ctx: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        reply(
            "RemoveContainer",
            self.agent.remove_container(&req.container_id),
        )?;
        Ok(Empty::new())
    }

    fn get_event(&self, ctx: &TtrpcContext, _req: Empty) -> ttrpc::Result<Event> {
        let gone = cancelled(ctx, Instant::now());
        let event = self.agent.events.pop(&gone).ok_or(AgentError::Cancelled);
        reply("GetEvent", event)
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: Empty) -> ttrpc::Result<Empty> {
        self.shutdown_inner();
        Ok(Empty::new())
    }
}

/// Starts the ttrpc server for `service` on `addr` (`vsock://-1:1024`, or `unix://PATH`).
pub fn serve(service: Service, addr: &str) -> ttrpc::Result<ttrpc::Server> {
    let service: Arc<dyn agent_ttrpc::Agent + Send + Sync> = Arc::new(service);
    let mut server = ttrpc::Server::new()
        .bind(addr)?
        .register_service(agent_ttrpc::create_agent(service));
    server.start()?;
    Ok(server)
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
