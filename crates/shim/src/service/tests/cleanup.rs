//! Host data survives every cleanup path of the service: a failed unmount or an unreadable
//! mount table keeps the container's directory, Delete says why, and a later Delete finishes.

use super::*;

/// Creates c1 with a bind mount of a directory holding a sentinel file; the bind's host
/// mount point, and the sentinel's path.
fn with_bind(h: &Harness) -> (PathBuf, PathBuf) {
    let data = h.dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let sentinel = data.join("sentinel");
    std::fs::write(&sentinel, "user data").unwrap();
    let spec = serde_json::json!({"mounts": [
        {"destination": "/data", "type": "bind", "source": data, "options": ["rbind"]}
    ]});
    h.service.do_create(&h.create_request("c1", &spec)).unwrap();
    let m0 = h.state_dir().join("shared/c1/m0");
    assert!(h.host.mounted(&m0));
    (m0, sentinel)
}

fn stop(h: &Harness) {
    h.kill("c1", "", 9, false).unwrap();
    h.wait("c1", "").unwrap();
}

#[test]
fn test_failed_unmount_fails_delete_keeps_everything_then_retry_cleans() {
    let h = Harness::new();
    let (m0, sentinel) = with_bind(&h);
    stop(&h);
    h.host.fail_unmount(&m0);

    let e = h.delete("c1", "").unwrap_err();

    let text = e.to_string();
    assert!(
        text.contains("cannot unmount") && text.contains("m0"),
        "{text}"
    );
    assert_eq!(code(e), ttrpc::Code::INTERNAL);
    assert!(m0.exists(), "the mount point is not removed");
    assert!(h.host.mounted(&m0));
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "user data");
    assert!(h.state("c1", "").is_ok(), "the container stays for a retry");
    assert!(!h
        .events
        .topics()
        .contains(&topics::TASK_DELETE_EVENT_TOPIC.to_owned()));

    // The mount lets go (say, the process holding it ended): a second Delete finishes.
    h.host.allow_unmount(&m0);
    h.delete("c1", "").unwrap();
    assert!(
        h.host_leftovers("c1").is_empty(),
        "{:?}",
        h.host_leftovers("c1")
    );
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "user data");
    assert!(h
        .events
        .topics()
        .contains(&topics::TASK_DELETE_EVENT_TOPIC.to_owned()));
}

#[test]
fn test_unreadable_mount_table_fails_delete_and_keeps_the_directory() {
    let h = Harness::new();
    let (m0, sentinel) = with_bind(&h);
    stop(&h);
    h.host.fail_mount_table();

    let e = h.delete("c1", "").unwrap_err();

    assert!(e.to_string().contains("cannot read the mount table"), "{e}");
    assert!(m0.exists());
    assert!(sentinel.exists());
}

#[test]
fn test_failed_unmount_at_shutdown_keeps_the_state_directory() {
    let h = Harness::new();
    h.create("c1");
    stop(&h);
    h.delete("c1", "").unwrap();
    // Something mounted beneath the share that the shim cannot unmount.
    let stray = h.state_dir().join("shared/stray");
    std::fs::create_dir_all(&stray).unwrap();
    h.host.add_mount_point(&stray);
    h.host.fail_unmount(&stray);

    h.service.do_shutdown();

    h.exit.wait();
    assert!(stray.exists() && h.state_dir().exists());
}
