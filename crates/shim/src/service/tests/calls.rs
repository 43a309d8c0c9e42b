//! Every task call in every process state, answered as containerd's runc shim answers it
//! (docs/shim.md). Where runc's shim sends a plain error (containerd: Unknown), we expect
//! FAILED_PRECONDITION; everything else is runc's answer.

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, PidsRequest, ResizePtyRequest, StatsRequest, UpdateTaskRequest,
};
use containerd_shim::protos::types::task::Status;
use protobuf::well_known_types::any::Any;
use ttrpc::Code;

use super::*;

/// How a call came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err(Code),
    /// Wait did not return (the process has not ended).
    Blocks,
}

use Outcome::{Blocks, Err as E, Ok as OK};
const NF: Outcome = E(Code::NOT_FOUND);
const FP: Outcome = E(Code::FAILED_PRECONDITION);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Created,
    Running,
    Paused,
    Stopped,
    Deleted,
}

const ALL: [St; 5] = [
    St::Created,
    St::Running,
    St::Paused,
    St::Stopped,
    St::Deleted,
];

#[derive(Debug, Clone, Copy)]
enum Call {
    Start,
    Kill9,
    KillAll,
    Delete,
    Wait,
    Pause,
    Resume,
    CloseIo,
    Resize,
    Exec,
    State,
    Pids,
    Stats,
    Update,
}

fn outcome<T>(r: Result<T, ShimError>) -> Outcome {
    match r {
        Ok(_) => OK,
        Err(e) => E(code(e)),
    }
}

/// A harness whose container c1's init is in state `st`.
fn init_in(st: St) -> Harness {
    let h = Harness::new();
    h.create("c1");
    if st == St::Created {
        return h;
    }
    h.start("c1", "").unwrap();
    match st {
        St::Paused => h.service.do_pause("c1").unwrap(),
        St::Stopped | St::Deleted => {
            h.vm().exit("c1", "", 0);
            h.events.wait_exits(1);
            if st == St::Deleted {
                h.delete("c1", "").unwrap();
            }
        }
        _ => {}
    }
    h
}

fn call(h: &Harness, call: Call, exec_id: &str) -> Outcome {
    let s = &h.service;
    let id = "c1".to_owned();
    let exec = exec_id.to_owned();
    match call {
        Call::Start => outcome(h.start("c1", exec_id)),
        Call::Kill9 => outcome(h.kill("c1", exec_id, 9, false)),
        Call::KillAll => outcome(h.kill("c1", exec_id, 9, true)),
        Call::Delete => outcome(h.delete("c1", exec_id)),
        Call::Wait => {
            if h.wait_blocks("c1", exec_id) {
                Blocks
            } else {
                outcome(h.wait("c1", exec_id))
            }
        }
        Call::Pause => outcome(s.do_pause("c1")),
        Call::Resume => outcome(s.do_resume("c1")),
        Call::CloseIo => outcome(s.do_close_io(&CloseIORequest {
            id,
            exec_id: exec,
            stdin: true,
            ..Default::default()
        })),
        Call::Resize => outcome(s.do_resize_pty(&ResizePtyRequest {
            id,
            exec_id: exec,
            width: 80,
            height: 25,
            ..Default::default()
        })),
        Call::Exec => outcome(h.exec("c1", "new")),
        Call::State => outcome(h.state("c1", exec_id)),
        Call::Pids => outcome(s.do_pids(&PidsRequest {
            id,
            ..Default::default()
        })),
        Call::Stats => outcome(s.do_stats(&StatsRequest {
            id,
            ..Default::default()
        })),
        Call::Update => outcome(
            s.do_update(&UpdateTaskRequest {
                id,
                resources: Some(Any {
                    value: b"{}".to_vec(),
                    ..Default::default()
                })
                .into(),
                ..Default::default()
            }),
        ),
    }
}

/// `expected[i]` is the outcome in state `ALL[i]`.
fn check_init(c: Call, expected: [Outcome; 5]) {
    for (st, want) in ALL.into_iter().zip(expected) {
        let h = init_in(st);
        assert_eq!(call(&h, c, ""), want, "init {c:?} in {st:?}");
    }
}

#[test]
fn test_init_start_in_each_state() {
    check_init(Call::Start, [OK, FP, FP, FP, NF]);
}

#[test]
fn test_init_kill_in_each_state() {
    check_init(Call::Kill9, [OK, OK, OK, NF, NF]);
    check_init(Call::KillAll, [OK, OK, OK, OK, NF]);
}

#[test]
fn test_init_delete_in_each_state() {
    check_init(Call::Delete, [OK, FP, FP, OK, NF]);
}

#[test]
fn test_init_wait_in_each_state() {
    check_init(Call::Wait, [Blocks, Blocks, Blocks, OK, NF]);
}

#[test]
fn test_init_pause_resume_in_each_state() {
    check_init(Call::Pause, [FP, OK, FP, FP, NF]);
    check_init(Call::Resume, [FP, FP, OK, FP, NF]);
}

#[test]
fn test_init_io_calls_in_each_state() {
    check_init(Call::CloseIo, [OK, OK, OK, OK, NF]);
    check_init(Call::Resize, [OK, OK, OK, OK, NF]);
}

#[test]
fn test_exec_into_container_in_each_state() {
    check_init(Call::Exec, [OK, OK, FP, FP, NF]);
}

#[test]
fn test_init_queries_in_each_state() {
    check_init(Call::State, [OK, OK, OK, OK, NF]);
    check_init(Call::Pids, [OK, OK, OK, OK, NF]);
    check_init(Call::Stats, [OK, OK, OK, OK, NF]);
    check_init(Call::Update, [OK, OK, OK, FP, NF]);
}

#[test]
fn test_init_state_status_in_each_state() {
    let want = [
        Status::CREATED,
        Status::RUNNING,
        Status::PAUSED,
        Status::STOPPED,
    ];
    for (st, status) in ALL.into_iter().zip(want) {
        let h = init_in(st);
        assert_eq!(h.state("c1", "").unwrap().status.unwrap(), status, "{st:?}");
    }
}

#[test]
fn test_connect_answers_for_any_id() {
    let h = init_in(St::Running);
    let known = h.service.do_connect(&ConnectRequest {
        id: "c1".into(),
        ..Default::default()
    });
    assert_eq!(known.task_pid, 101);
    assert_eq!(known.shim_pid, std::process::id());
    let unknown = h.service.do_connect(&ConnectRequest {
        id: "nope".into(),
        ..Default::default()
    });
    assert_eq!(unknown.task_pid, 0);
}

/// A harness whose exec e1 of the running container c1 is in state `st`.
fn exec_in(st: St) -> Harness {
    let h = init_in(St::Running);
    h.exec("c1", "e1").unwrap();
    if st == St::Created {
        return h;
    }
    h.start("c1", "e1").unwrap();
    if matches!(st, St::Stopped | St::Deleted) {
        h.vm().exit("c1", "e1", 3);
        h.events.wait_exits(1);
        if st == St::Deleted {
            h.delete("c1", "e1").unwrap();
        }
    }
    h
}

/// `expected` for the exec states created, running, stopped, deleted.
fn check_exec(c: Call, expected: [Outcome; 4]) {
    let states = [St::Created, St::Running, St::Stopped, St::Deleted];
    for (st, want) in states.into_iter().zip(expected) {
        let h = exec_in(st);
        assert_eq!(call(&h, c, "e1"), want, "exec {c:?} in {st:?}");
    }
}

#[test]
fn test_exec_start_kill_delete_in_each_state() {
    check_exec(Call::Start, [OK, FP, FP, NF]);
    check_exec(Call::Kill9, [FP, OK, NF, NF]);
    check_exec(Call::KillAll, [FP, OK, NF, NF]);
    check_exec(Call::Delete, [OK, FP, OK, NF]);
}

#[test]
fn test_exec_wait_io_and_state_in_each_state() {
    check_exec(Call::Wait, [Blocks, Blocks, OK, NF]);
    check_exec(Call::Resize, [OK, OK, FP, NF]);
    check_exec(Call::CloseIo, [OK, OK, OK, NF]);
    check_exec(Call::State, [OK, OK, OK, NF]);
}

#[test]
fn test_exec_kill_all_signals_only_the_exec() {
    let h = exec_in(St::Running);
    h.kill("c1", "e1", 9, true).unwrap();
    assert!(
        h.vm()
            .calls()
            .contains(&r#"kill c1 "e1" 9 all=false"#.to_owned()),
        "{:?}",
        h.vm().calls()
    );
    assert!(h.vm().alive("c1", ""));
}

#[test]
fn test_exec_duplicate_id_already_exists_in_any_state() {
    for st in [St::Created, St::Running, St::Stopped] {
        let h = exec_in(st);
        assert_eq!(
            outcome(h.exec("c1", "e1")),
            E(Code::ALREADY_EXISTS),
            "{st:?}"
        );
    }
}

#[test]
fn test_exec_start_after_init_ended_fails_precondition() {
    let h = init_in(St::Running);
    h.exec("c1", "e1").unwrap();
    h.vm().exit("c1", "", 0);
    h.events.wait_exits(1);
    let e = h.start("c1", "e1").unwrap_err();
    assert!(e.to_string().contains("init process is not running"), "{e}");
    assert_eq!(code(e), Code::FAILED_PRECONDITION);
}

#[test]
fn test_exec_of_paused_container_reads_paused() {
    let h = exec_in(St::Running);
    h.service.do_pause("c1").unwrap();
    assert_eq!(h.state("c1", "e1").unwrap().status.unwrap(), Status::PAUSED);
}

#[test]
fn test_bad_requests_are_invalid_argument() {
    let h = init_in(St::Running);
    let bad_id = h.create_request("../x", &serde_json::json!({}));
    assert_eq!(
        outcome(h.service.do_create(&bad_id)),
        E(Code::INVALID_ARGUMENT)
    );
    assert_eq!(outcome(h.exec("c1", "a/b")), E(Code::INVALID_ARGUMENT));
    let no_spec = h
        .service
        .do_exec(&containerd_shim::api::ExecProcessRequest {
            id: "c1".into(),
            exec_id: "e9".into(),
            ..Default::default()
        });
    assert_eq!(outcome(no_spec), E(Code::INVALID_ARGUMENT));
    let checkpoint = CreateTaskRequest {
        checkpoint: "/cp".into(),
        ..h.create_request("c9", &serde_json::json!({}))
    };
    assert_eq!(
        outcome(h.service.do_create(&checkpoint)),
        E(Code::UNIMPLEMENTED)
    );
    assert_eq!(
        outcome(
            h.service
                .do_create(&h.create_request("c1", &serde_json::json!({})))
        ),
        E(Code::ALREADY_EXISTS)
    );
}

#[test]
fn test_agent_errors_keep_their_code() {
    let h = init_in(St::Running);
    h.vm().fail_next(
        "pause",
        ShimError::FailedPrecondition("pause: frozen cgroup missing".into()),
    );
    assert_eq!(outcome(h.service.do_pause("c1")), FP);
    h.vm().fail_next(
        "stats",
        ShimError::Internal("stats: connection reset".into()),
    );
    let e = h
        .service
        .do_stats(&StatsRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(code(e), Code::INTERNAL);
}
