//! The CRI runtime service over containerd's unix socket, each call bounded by a timeout and
//! its error named after the call.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// A connected CRI runtime service.
#[derive(Debug)]
pub struct Cri {
    pub svc: RuntimeServiceClient<Channel>,
    pub timeout: Duration,
}

impl Cri {
    pub async fn connect(socket: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let path: PathBuf = socket.to_owned();
        // The URI is a placeholder: the connector below always dials the socket.
        let channel =
            Endpoint::try_from("http://[::1]:0")?
                .connect_timeout(Duration::from_secs(10))
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
                .with_context(|| format!("cannot connect to containerd at {}", socket.display()))?;
        Ok(Self {
            svc: RuntimeServiceClient::new(channel),
            timeout,
        })
    }
}

/// Awaits one CRI call within `timeout`, naming `call` in its error.
pub async fn call<T>(
    call: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => anyhow::bail!("{call} did not answer within {} s", timeout.as_secs()),
        Ok(Err(status)) => {
            anyhow::bail!("{call} failed: {:?}: {}", status.code(), status.message())
        }
        Ok(Ok(reply)) => Ok(reply.into_inner()),
    }
}
