//! The normal lives of containers and execs, with the events containerd sees, in order.

use containerd_shim::api::{PidsRequest, StatsRequest};
use containerd_shim::protos::cgroups_v2::metrics::Metrics;
use containerd_shim::protos::events::task::{TaskDelete, TaskExit, TaskOOM};
use protobuf::Message;

use super::*;

#[test]
fn test_lifecycle_create_start_exec_kill_wait_delete_events_in_order() {
    let h = Harness::new();

    let pid = h.create("c1");
    assert_eq!(h.start("c1", "").unwrap(), pid);
    h.exec("c1", "e1").unwrap();
    let exec_pid = h.start("c1", "e1").unwrap();
    assert_ne!(exec_pid, pid);
    h.vm().exit("c1", "e1", 3);
    assert_eq!(h.wait("c1", "e1").unwrap(), 3);
    let exec_deleted = h.delete("c1", "e1").unwrap();
    assert_eq!((exec_deleted.exit_status, exec_deleted.pid), (3, exec_pid));
    h.kill("c1", "", 15, false).unwrap();
    assert_eq!(h.wait("c1", "").unwrap(), 128 + 15);
    let deleted = h.delete("c1", "").unwrap();
    assert_eq!((deleted.exit_status, deleted.pid), (143, pid));

    assert_eq!(
        h.events.topics(),
        [
            topics::TASK_CREATE_EVENT_TOPIC,
            topics::TASK_START_EVENT_TOPIC,
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            topics::TASK_EXIT_EVENT_TOPIC,
            topics::TASK_EXIT_EVENT_TOPIC,
            topics::TASK_DELETE_EVENT_TOPIC,
        ]
    );
    assert_eq!(
        h.events.exits(),
        [("e1".to_owned(), 3), ("c1".to_owned(), 143)],
        "TaskExit.id is the exec id, or the container id for the init"
    );
    let events = lock(&h.events.events);
    let exit = events[5].message.downcast_ref::<TaskExit>().unwrap();
    assert_eq!((exit.container_id.as_str(), exit.pid), ("c1", pid));
    assert!(exit.exited_at.is_some());
    let delete = events[6].message.downcast_ref::<TaskDelete>().unwrap();
    assert_eq!(
        (delete.container_id.as_str(), delete.exit_status),
        ("c1", 143)
    );
    drop(events);

    assert_eq!(
        h.vm().calls(),
        [
            "create c1",
            "start c1",
            "exec c1 e1",
            r#"kill c1 "" 15 all=false"#,
            "remove c1"
        ]
    );
    assert!(
        h.host_leftovers("c1").is_empty(),
        "{:?}",
        h.host_leftovers("c1")
    );
    h.service.do_shutdown();
    h.exit.wait();
    assert!(
        !h.state_dir().exists(),
        "the vm's state directory is removed"
    );
}

#[test]
fn test_create_mounts_rootfs_and_binds_then_names_guest_paths() {
    let h = Harness::new();
    let data = h.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let spec = serde_json::json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}
    ]});
    h.service.do_create(&h.create_request("c1", &spec)).unwrap();

    let shared = h.state_dir().join("shared");
    let mounts: Vec<String> = h
        .host
        .calls()
        .iter()
        .map(|m| format!("{:?} {}", m.fstype, rel(&m.target, &shared)))
        .collect();
    assert_eq!(
        mounts,
        [r#"Some("overlay") c1/rootfs"#, "None c1/m1", "None c1/m1"],
        "the rootfs, then the bind and its read-only remount"
    );
    let created = h.vm().spec("c1").unwrap();
    assert_eq!(created.rootfs, "/run/lcow/share/lcow/c1/rootfs");
    let sent: serde_json::Value = serde_json::from_slice(&created.oci_spec).unwrap();
    assert_eq!(sent["mounts"][1]["source"], "/run/lcow/share/lcow/c1/m1");
    assert_eq!(sent["mounts"][0]["source"], "proc");
    assert_eq!(created.io.stdout, "/fifo/out");
}

#[test]
fn test_init_exit_is_published_after_its_running_execs() {
    let h = Harness::new();
    h.create("c1");
    h.start("c1", "").unwrap();
    for e in ["e1", "e2"] {
        h.exec("c1", e).unwrap();
        h.start("c1", e).unwrap();
    }
    h.exec("c1", "never-started").unwrap();

    h.kill("c1", "", 9, false).unwrap();

    let exits = h.events.wait_exits(3);
    assert_eq!(exits.last().unwrap(), &("c1".to_owned(), 137), "{exits:?}");
    let mut execs: Vec<_> = exits[..2].to_vec();
    execs.sort();
    assert_eq!(execs, [("e1".to_owned(), 137), ("e2".to_owned(), 137)]);
    assert!(
        h.wait_blocks("c1", "never-started"),
        "no process, no exit yet"
    );
    assert_eq!(h.delete("c1", "never-started").unwrap().exit_status, 0);
}

#[test]
fn test_kill_created_init_ends_it_and_reports_the_exit() {
    let h = Harness::new();
    h.create("c1");
    h.kill("c1", "", 9, false).unwrap();
    assert_eq!(h.wait("c1", "").unwrap(), 137);
    assert_eq!(h.events.exits(), [("c1".to_owned(), 137)]);
    assert_eq!(h.delete("c1", "").unwrap().exit_status, 137);
}

#[test]
fn test_delete_created_init_kills_it_wait_returns_and_exit_precedes_delete() {
    let h = Harness::new();
    h.create("c1");
    let waiter = {
        let service = Arc::clone(&h.service);
        std::thread::spawn(move || {
            service
                .do_wait(&WaitRequest {
                    id: "c1".into(),
                    ..Default::default()
                })
                .unwrap()
                .exit_status
        })
    };
    std::thread::sleep(Duration::from_millis(50));

    let deleted = h.delete("c1", "").unwrap();

    assert_eq!(deleted.exit_status, 137);
    assert_eq!(waiter.join().unwrap(), 137, "a Wait in flight returns");
    assert_eq!(
        h.events.topics()[1..],
        [
            topics::TASK_EXIT_EVENT_TOPIC,
            topics::TASK_DELETE_EVENT_TOPIC
        ]
    );
    assert!(h
        .vm()
        .calls()
        .contains(&r#"kill c1 "" 9 all=true"#.to_owned()));
}

#[test]
fn test_pause_resume_publish_and_state_follows() {
    let h = Harness::new();
    h.create("c1");
    h.start("c1", "").unwrap();
    h.service.do_pause("c1").unwrap();
    h.service.do_resume("c1").unwrap();
    assert_eq!(
        h.events.topics()[2..],
        [
            topics::TASK_PAUSED_EVENT_TOPIC,
            topics::TASK_RESUMED_EVENT_TOPIC
        ]
    );
    assert_eq!(h.vm().calls()[2..], ["pause c1", "resume c1"]);
}

#[test]
fn test_oom_in_the_vm_is_published() {
    let h = Harness::new();
    h.create("c1");
    h.vm().oom("c1");
    h.events.wait_topic(topics::TASK_OOM_EVENT_TOPIC);
    let events = lock(&h.events.events);
    let oom = events
        .iter()
        .find_map(|e| e.message.downcast_ref::<TaskOOM>())
        .unwrap();
    assert_eq!(oom.container_id, "c1");
}

#[test]
fn test_pids_name_the_exec_of_each_pid() {
    let h = Harness::new();
    let init = h.create("c1");
    h.start("c1", "").unwrap();
    h.exec("c1", "e1").unwrap();
    let exec = h.start("c1", "e1").unwrap();

    let resp = h
        .service
        .do_pids(&PidsRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap();

    let pids: Vec<u32> = resp.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, [init, exec]);
    assert!(
        resp.processes[0].info.is_none(),
        "the init carries no details"
    );
    let info = resp.processes[1].info.as_ref().unwrap();
    assert_eq!(info.type_url, "containerd.runc.v1.ProcessDetails");
    // containerd.runc.v1.ProcessDetails { exec_id = 1 }
    assert_eq!(info.value, b"\x0a\x02e1");
}

#[test]
fn test_stats_are_cgroup_v2_metrics() {
    let h = Harness::new();
    h.create("c1");
    let resp = h
        .service
        .do_stats(&StatsRequest {
            id: "c1".into(),
            ..Default::default()
        })
        .unwrap();
    let any = resp.stats.unwrap();
    assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
    assert_eq!(
        Metrics::parse_from_bytes(&any.value).unwrap().memory.usage,
        4096
    );
}

#[test]
fn test_pod_second_container_joins_the_vm_and_shutdown_waits_for_the_last() {
    let h = Harness::new();
    h.create("sandbox");
    h.create("app");
    assert_eq!(h.launcher.boots(), 1, "one VM for the pod");
    h.start("sandbox", "").unwrap();
    h.start("app", "").unwrap();
    h.kill("app", "", 9, false).unwrap();
    h.wait("app", "").unwrap();
    h.delete("app", "").unwrap();

    h.service.do_shutdown();

    assert!(
        !h.vm().calls().contains(&"shutdown".to_owned()),
        "the sandbox still runs"
    );
    assert!(h.vm().alive("sandbox", ""));
    assert!(h.host_leftovers("app").is_empty());
    h.kill("sandbox", "", 9, false).unwrap();
    h.wait("sandbox", "").unwrap();
    h.delete("sandbox", "").unwrap();
    h.service.do_shutdown();
    h.exit.wait();
    assert!(h.vm().calls().contains(&"shutdown".to_owned()));
}

#[test]
fn test_close_io_reaches_the_process_stdin() {
    let h = Harness::new();
    h.create("c1");
    h.service
        .do_close_io(&containerd_shim::api::CloseIORequest {
            id: "c1".into(),
            stdin: true,
            ..Default::default()
        })
        .unwrap();
    assert!(h.vm().calls().contains(&r#"close-stdin c1 """#.to_owned()));
}

#[test]
fn test_task_methods_serve_v2_and_v3() {
    let h = Harness::new();
    let methods = crate::bootstrap::task_methods(Arc::clone(&h.service));
    for name in crate::bootstrap::TASK_SERVICES {
        for m in [
            "Create", "Start", "Wait", "Kill", "Delete", "Exec", "Stats", "Shutdown", "Pids",
        ] {
            assert!(methods.contains_key(&format!("/{name}/{m}")), "{name}/{m}");
        }
    }
    assert_eq!(methods.len(), 2 * 17);
}

#[test]
fn test_shutdown_with_no_containers_signals_exit() {
    let h = Harness::new();
    h.service.do_shutdown();
    h.exit.wait();
}

#[test]
fn test_init_ending_at_once_is_stopped_and_its_exit_follows_its_start() {
    let h = Harness::new();
    h.create("c1");
    h.vm().end_on_start("c1", 0);
    h.start("c1", "").unwrap();
    assert_eq!(h.wait("c1", "").unwrap(), 0);
    assert_eq!(
        h.state("c1", "").unwrap().status.unwrap(),
        containerd_shim::protos::types::task::Status::STOPPED
    );
    assert_eq!(
        h.events.topics()[1..],
        [
            topics::TASK_START_EVENT_TOPIC,
            topics::TASK_EXIT_EVENT_TOPIC
        ]
    );
    h.delete("c1", "").unwrap();
}
