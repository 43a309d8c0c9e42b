//! The pod's life, step by step, as the kubelet drives it: RunPodSandbox on the handler, two
//! containers created and started in it, ExecSync, logs, ContainerStatus through RUNNING and
//! EXITED, StopContainer's SIGKILL escalation, RemoveContainer, StopPodSandbox,
//! RemovePodSandbox, and nothing of the pod left in containerd's lists.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use k8s_cri::v1 as cri;

use crate::client::{call, Cri};

/// What the pod runs on.
#[derive(Debug)]
pub struct Plan {
    pub handler: String,
    pub image: String,
    pub log_dir: PathBuf,
}

/// Counts the checks that passed and prints each.
#[derive(Debug, Default)]
struct Checks(usize);

impl Checks {
    fn ok(&mut self, what: &str, since: Instant) {
        self.0 += 1;
        println!("ok: cri: {what} ({} ms)", since.elapsed().as_millis());
    }
}

/// Runs the pod's life; on a failure, stops and removes the pod before returning the error.
pub async fn run(cri: &mut Cri, plan: &Plan) -> anyhow::Result<usize> {
    let mut checks = Checks::default();
    let config = sandbox_config(plan);
    let t = Instant::now();
    let reply = call(
        "RunPodSandbox",
        cri.timeout,
        cri.svc.run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: plan.handler.clone(),
        }),
    )
    .await?;
    let pod = reply.pod_sandbox_id;
    checks.ok(&format!("RunPodSandbox on handler {}", plan.handler), t);
    let result = pod_life(cri, plan, &config, &pod, &mut checks).await;
    if result.is_err() {
        // Leave nothing behind; the original error is the one reported.
        let _ = remove_pod(cri, &pod, &mut Checks::default()).await;
        return result.map(|()| checks.0);
    }
    remove_pod(cri, &pod, &mut checks).await?;
    Ok(checks.0)
}

async fn pod_life(
    cri: &mut Cri,
    plan: &Plan,
    config: &cri::PodSandboxConfig,
    pod: &str,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let state = sandbox_state(cri, pod).await?;
    ensure!(
        state == cri::PodSandboxState::SandboxReady,
        "PodSandboxStatus: the new pod is {state:?}, not SANDBOX_READY"
    );
    checks.ok("PodSandboxStatus: SANDBOX_READY", t);

    // Two containers: c1 prints a line for its log, c2 only sleeps (as pid 1 of its pid
    // namespace it ignores SIGTERM, so StopContainer must escalate to SIGKILL).
    let c1_cmd = ["sh", "-c", "echo c1-up; while :; do sleep 1; done"];
    let c1 = create_and_start(cri, plan, config, pod, "c1", &c1_cmd, checks).await?;
    let c2 = create_and_start(cri, plan, config, pod, "c2", &["sleep", "100000"], checks).await?;
    for (name, id) in [("c1", &c1), ("c2", &c2)] {
        let t = Instant::now();
        let s = container_status(cri, id).await?;
        ensure!(
            s.state() == cri::ContainerState::ContainerRunning,
            "ContainerStatus: {name} is {:?} after StartContainer, not CONTAINER_RUNNING",
            s.state()
        );
        checks.ok(&format!("ContainerStatus: {name} CONTAINER_RUNNING"), t);
    }

    let t = Instant::now();
    let cmd = ["sh", "-c", "echo exec-$((6 * 7))"];
    expect_exec(cri, &c1, &cmd, (0, "exec-42\n", "")).await?;
    checks.ok("ExecSync in c1: stdout and exit 0", t);
    let t = Instant::now();
    let cmd = ["sh", "-c", "echo oops >&2; exit 3"];
    expect_exec(cri, &c1, &cmd, (3, "", "oops\n")).await?;
    checks.ok("ExecSync in c1: stderr and exit 3", t);

    // One VM for the pod: both containers see the same kernel boot, which is not the host's.
    let t = Instant::now();
    let boot = ["cat", "/proc/sys/kernel/random/boot_id"];
    let b1 = exec_sync(cri, &c1, &boot).await?;
    let b2 = exec_sync(cri, &c2, &boot).await?;
    let host = std::fs::read("/proc/sys/kernel/random/boot_id")
        .context("cannot read the host's boot id")?;
    ensure!(
        b1.exit_code == 0 && b1.stdout.len() == 37,
        "ExecSync in c1: the boot id read back as {:?} (exit {})",
        String::from_utf8_lossy(&b1.stdout),
        b1.exit_code
    );
    ensure!(
        b1.stdout == b2.stdout,
        "c1 and c2 run in different kernels (boot ids {:?} and {:?}): the pod's second container did not join its VM",
        String::from_utf8_lossy(&b1.stdout),
        String::from_utf8_lossy(&b2.stdout)
    );
    ensure!(
        b1.stdout != host,
        "the pod's containers run in the host's kernel (boot id {:?})",
        String::from_utf8_lossy(&host)
    );
    checks.ok("both containers run in one VM, not on the host", t);

    let t = Instant::now();
    let log = plan.log_dir.join("c1.log");
    wait_for(Duration::from_secs(20), || {
        Ok(std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .any(|l| cri_log_line(l) == Some(("stdout", "c1-up"))))
    })
    .await
    .with_context(|| format!("c1's stdout never reached its CRI log {}", log.display()))?;
    checks.ok("c1's stdout in its CRI log", t);

    // StopContainer with a grace period: SIGTERM, ignored, then SIGKILL.
    let t = Instant::now();
    call(
        "StopContainer",
        cri.timeout,
        cri.svc.stop_container(cri::StopContainerRequest {
            container_id: c2.clone(),
            timeout: 2,
        }),
    )
    .await?;
    let s = container_status(cri, &c2).await?;
    ensure!(
        s.state() == cri::ContainerState::ContainerExited && s.exit_code == 137,
        "ContainerStatus: c2 is {:?} with exit code {} after StopContainer, want CONTAINER_EXITED and 137 (SIGKILL)",
        s.state(),
        s.exit_code
    );
    checks.ok("StopContainer c2: CONTAINER_EXITED, 137", t);
    let t = Instant::now();
    call(
        "RemoveContainer",
        cri.timeout,
        cri.svc.remove_container(cri::RemoveContainerRequest {
            container_id: c2.clone(),
        }),
    )
    .await?;
    let left = containers(cri, pod).await?;
    ensure!(
        left.len() == 1 && left[0].id == c1,
        "ListContainers after RemoveContainer c2: {:?}, want c1 alone",
        left.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    checks.ok("RemoveContainer c2: c1 alone in the pod", t);
    let t = Instant::now();
    expect_exec(cri, &c1, &["echo", "still-here"], (0, "still-here\n", "")).await?;
    checks.ok("c1 runs on after c2 left", t);

    let t = Instant::now();
    stop_pod(cri, pod).await?;
    let s = container_status(cri, &c1).await?;
    ensure!(
        s.state() == cri::ContainerState::ContainerExited,
        "ContainerStatus: c1 is {:?} after StopPodSandbox, not CONTAINER_EXITED",
        s.state()
    );
    let state = sandbox_state(cri, pod).await?;
    ensure!(
        state == cri::PodSandboxState::SandboxNotready,
        "PodSandboxStatus: the stopped pod is {state:?}, not SANDBOX_NOTREADY"
    );
    checks.ok(
        "StopPodSandbox: c1 CONTAINER_EXITED, pod SANDBOX_NOTREADY",
        t,
    );
    Ok(())
}

/// Stops (again: StopPodSandbox is idempotent) and removes the pod, then checks that
/// containerd lists neither it nor any of its containers.
async fn remove_pod(cri: &mut Cri, pod: &str, checks: &mut Checks) -> anyhow::Result<()> {
    let t = Instant::now();
    stop_pod(cri, pod).await?;
    call(
        "RemovePodSandbox",
        cri.timeout,
        cri.svc.remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.to_owned(),
        }),
    )
    .await?;
    let pods = call(
        "ListPodSandbox",
        cri.timeout,
        cri.svc.list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(cri::PodSandboxFilter {
                id: pod.to_owned(),
                ..Default::default()
            }),
        }),
    )
    .await?;
    ensure!(
        pods.items.is_empty(),
        "ListPodSandbox still lists the removed pod {pod}"
    );
    let left = containers(cri, pod).await?;
    ensure!(
        left.is_empty(),
        "ListContainers still lists the removed pod's containers: {:?}",
        left.iter().map(|c| &c.id).collect::<Vec<_>>()
    );
    checks.ok(
        "RemovePodSandbox: neither the pod nor its containers listed",
        t,
    );
    Ok(())
}

fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        // The VM is the pod's network boundary; a CNI network is a later step.
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

fn sandbox_config(plan: &Plan) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "lcow-cri".to_owned(),
            uid: format!("lcow-cri-{}", std::process::id()),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        // The node's network comes with the node's UTS namespace: no hostname of the pod's own
        // (OCI runtimes refuse one without a private UTS namespace).
        hostname: String::new(),
        log_directory: plan.log_dir.display().to_string(),
        labels: HashMap::from([("app".to_owned(), "lcow-cri".to_owned())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn create_and_start(
    cri: &mut Cri,
    plan: &Plan,
    sandbox: &cri::PodSandboxConfig,
    pod: &str,
    name: &str,
    command: &[&str],
    checks: &mut Checks,
) -> anyhow::Result<String> {
    let t = Instant::now();
    let config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: plan.image.clone(),
            ..Default::default()
        }),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = call(
        "CreateContainer",
        cri.timeout,
        cri.svc.create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.to_owned(),
            config: Some(config),
            sandbox_config: Some(sandbox.clone()),
        }),
    )
    .await
    .with_context(|| format!("container {name}"))?
    .container_id;
    call(
        "StartContainer",
        cri.timeout,
        cri.svc.start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        }),
    )
    .await
    .with_context(|| format!("container {name}"))?;
    checks.ok(&format!("CreateContainer and StartContainer {name}"), t);
    Ok(id)
}

async fn exec_sync(cri: &mut Cri, id: &str, cmd: &[&str]) -> anyhow::Result<cri::ExecSyncResponse> {
    call(
        "ExecSync",
        cri.timeout,
        cri.svc.exec_sync(cri::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
            timeout: 60,
        }),
    )
    .await
    .with_context(|| format!("ExecSync {cmd:?}"))
}

/// ExecSync `cmd` in `id`, which must exit with `want`'s status and print exactly its stdout
/// and stderr.
async fn expect_exec(
    cri: &mut Cri,
    id: &str,
    cmd: &[&str],
    want: (i32, &str, &str),
) -> anyhow::Result<()> {
    let out = exec_sync(cri, id, cmd).await?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(
        (out.exit_code, &*stdout, &*stderr) == want,
        "ExecSync {cmd:?}: exit {} stdout {stdout:?} stderr {stderr:?}, want exit {} stdout {:?} stderr {:?}",
        out.exit_code,
        want.0,
        want.1,
        want.2
    );
    Ok(())
}

async fn stop_pod(cri: &mut Cri, pod: &str) -> anyhow::Result<()> {
    call(
        "StopPodSandbox",
        cri.timeout,
        cri.svc.stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.to_owned(),
        }),
    )
    .await?;
    Ok(())
}

async fn container_status(cri: &mut Cri, id: &str) -> anyhow::Result<cri::ContainerStatus> {
    call(
        "ContainerStatus",
        cri.timeout,
        cri.svc.container_status(cri::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        }),
    )
    .await?
    .status
    .context("ContainerStatus answered without a status")
}

async fn sandbox_state(cri: &mut Cri, pod: &str) -> anyhow::Result<cri::PodSandboxState> {
    let status = call(
        "PodSandboxStatus",
        cri.timeout,
        cri.svc.pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.to_owned(),
            verbose: false,
        }),
    )
    .await?
    .status
    .context("PodSandboxStatus answered without a status")?;
    Ok(status.state())
}

async fn containers(cri: &mut Cri, pod: &str) -> anyhow::Result<Vec<cri::Container>> {
    Ok(call(
        "ListContainers",
        cri.timeout,
        cri.svc.list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: pod.to_owned(),
                ..Default::default()
            }),
        }),
    )
    .await?
    .containers)
}

/// Polls `done` every 200 ms until it holds or `limit` passes.
async fn wait_for(
    limit: Duration,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if done()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("not within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One line of a CRI container log (`<RFC 3339 time> <stream> <P|F> <text>`): its stream and
/// text, or None when the line is not in that format.
fn cri_log_line(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.splitn(4, ' ');
    let _time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    matches!(tag, "F" | "P").then_some((stream, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cri_log_line_reads_stream_and_text() {
        assert_eq!(
            cri_log_line("2026-12-03T15:00:00.1Z stdout F c1-up"),
            Some(("stdout", "c1-up"))
        );
        assert_eq!(
            cri_log_line("2026-12-03T15:00:00.1Z stderr P a b"),
            Some(("stderr", "a b"))
        );
        assert_eq!(cri_log_line("c1-up"), None);
        assert_eq!(cri_log_line("t stdout X c1-up"), None);
    }
}
