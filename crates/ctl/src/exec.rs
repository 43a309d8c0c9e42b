//! `lcow-ctl exec`: run another process in a running container, with its own stdio streams.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use clap::Args;
use lcow_protocol::agent::{ExecProcessRequest, Stdio};
use serde_json::json;

use crate::agent::{ctx, rpc_message, Agent, CALL_TIMEOUT};
use crate::exit_code;
use crate::run::{attach, Streams};

/// Arguments of `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The container.
    pub container: String,
    /// The exec id (default: exec-<pid>-<time>).
    #[arg(long)]
    pub exec_id: Option<String>,
    /// Start the process and print its exec id without waiting or streaming stdio.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Extra environment entries KEY=VALUE.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The OCI `process` object of an exec.
pub fn process_json(args: &[String], env: &[String]) -> anyhow::Result<Vec<u8>> {
    let mut all_env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()];
    all_env.extend(env.iter().cloned());
    serde_json::to_vec(&json!({
        "terminal": false,
        "user": { "uid": 0, "gid": 0 },
        "args": args,
        "env": all_env,
        "cwd": "/",
    }))
    .context("cannot serialize the exec's process")
}

/// Runs the exec; returns the exit code to leave with.
pub fn exec(agent: &Agent, args: ExecArgs) -> anyhow::Result<u8> {
    let exec_id = args.exec_id.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("exec-{}-{nanos}", std::process::id())
    });
    anyhow::ensure!(
        lcow_protocol::valid_id(&exec_id),
        "{exec_id:?} is not a valid exec id"
    );
    let stdio = Stdio {
        stdin: !args.detach,
        stdout: !args.detach,
        stderr: !args.detach,
        ..Default::default()
    };
    let streams = Streams::open(agent, &args.container, &exec_id, &stdio)?;
    agent
        .client
        .exec_process(
            ctx(CALL_TIMEOUT),
            &ExecProcessRequest {
                container_id: args.container.clone(),
                exec_id: exec_id.clone(),
                process: process_json(&args.command, &args.env)?,
                stdio: Some(stdio).into(),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow!("cannot exec in {}: {}", args.container, rpc_message(&e)))?;
    if args.detach {
        println!("{exec_id}");
        return Ok(0);
    }
    let status = attach(agent, &args.container, &exec_id, streams, false)?;
    Ok(exit_code(status.exit_status))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_process_json_is_an_oci_process() {
        let bytes = process_json(&["sleep".into(), "1".into()], &["A=b".into()]).unwrap();
        let p: oci_spec::runtime::Process = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["sleep", "1"]);
        assert!(p.env().as_ref().unwrap().contains(&"A=b".to_owned()));
    }
}
