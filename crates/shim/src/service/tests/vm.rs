//! The VM under the service: booting it, failing to, and losing it mid-run.

use lcow_protocol::vm::VmExit;

use super::*;

#[test]
fn test_vm_dying_mid_run_every_task_exits_255_and_nothing_is_left() {
    let h = Harness::new();
    h.create("c1");
    h.create("c2");
    h.start("c1", "").unwrap();
    h.start("c2", "").unwrap();
    h.exec("c1", "e1").unwrap();
    h.start("c1", "e1").unwrap();

    h.vm().die(VmExit::Reset);

    let mut exits = h.events.wait_exits(3);
    exits.sort();
    assert_eq!(
        exits,
        [
            ("c1".to_owned(), 255),
            ("c2".to_owned(), 255),
            ("e1".to_owned(), 255)
        ]
    );
    for (id, exec) in [("c1", ""), ("c1", "e1"), ("c2", "")] {
        assert_eq!(h.wait(id, exec).unwrap(), 255, "{id}/{exec}");
    }
    // The agent is gone, so its part of Delete fails; the host side is still cleaned.
    for id in ["c1", "c2"] {
        assert_eq!(h.delete(id, "").unwrap().exit_status, 255);
        assert!(
            h.host_leftovers(id).is_empty(),
            "{id}: {:?}",
            h.host_leftovers(id)
        );
    }
    h.service.do_shutdown();
    h.exit.wait();
    assert!(!h.state_dir().exists());
}

#[test]
fn test_create_after_the_vm_ended_fails_precondition_naming_the_end() {
    let h = Harness::new();
    h.create("c1");
    h.vm().die(VmExit::GuestPanic);
    let e = h
        .service
        .do_create(&h.create_request("c2", &serde_json::json!({})))
        .unwrap_err();
    assert!(e.to_string().contains("guest-panic"), "{e}");
    assert_eq!(code(e), ttrpc::Code::FAILED_PRECONDITION);
}

#[test]
fn test_boot_failure_is_reported_and_nothing_published() {
    let h = Harness::new();
    h.launcher.fail_next("no kvm here");
    let e = h
        .service
        .do_create(&h.create_request("c1", &serde_json::json!({})))
        .unwrap_err();
    assert!(e.to_string().contains("no kvm here"), "{e}");
    assert_eq!(code(e), ttrpc::Code::INTERNAL);
    assert!(h.events.topics().is_empty());
    h.create("c1");
    assert_eq!(h.launcher.boots(), 1, "the next Create boots");
}

#[test]
fn test_create_failing_in_the_vm_unmounts_and_stops_the_vm_it_booted() {
    let h = Harness::new();
    h.vm().fail_next(
        "create",
        ShimError::InvalidArgument("create container: bad spec".into()),
    );
    let req = h.create_request("c1", &serde_json::json!({}));

    let e = h.service.do_create(&req).unwrap_err();

    assert_eq!(code(e), ttrpc::Code::INVALID_ARGUMENT);
    assert!(
        h.host_leftovers("c1").is_empty(),
        "{:?}",
        h.host_leftovers("c1")
    );
    assert!(h.vm().calls().contains(&"shutdown".to_owned()));
    assert!(crate::record::read(Path::new(&req.bundle)).is_none());
    assert!(h.events.topics().is_empty());
}

#[test]
fn test_joined_container_failing_keeps_the_pod_vm() {
    let h = Harness::new();
    h.create("sandbox");
    h.vm().fail_next(
        "create",
        ShimError::Internal("create container: boom".into()),
    );
    h.service
        .do_create(&h.create_request("app", &serde_json::json!({})))
        .unwrap_err();
    assert!(!h.vm().calls().contains(&"shutdown".to_owned()));
    assert!(h.host_leftovers("app").is_empty());
    h.start("sandbox", "").unwrap();
}

/// containerd's `lcow-layer` rootfs for container `id`: a scratch directory with its
/// `sandbox.vhdx` and two layer directories (containerd's order: the top first).
fn lcow_layer_rootfs(h: &Harness, id: &str) -> Vec<containerd_shim_protos::api::Mount> {
    let root = h.dir.path().join("layers").join(id);
    let mut parents = Vec::new();
    for name in ["top", "base"] {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("layer.vhd"), "").unwrap();
        parents.push(d.display().to_string());
    }
    let scratch = root.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("sandbox.vhdx"), "").unwrap();
    vec![containerd_shim_protos::api::Mount {
        type_: "lcow-layer".into(),
        source: scratch.display().to_string(),
        options: vec![
            "rw".into(),
            format!(
                "parentLayerPaths={}",
                serde_json::to_string(&parents).unwrap()
            ),
        ],
        ..Default::default()
    }]
}

#[test]
fn test_lcow_layer_rootfs_becomes_the_vms_disks_and_the_agents_overlay() {
    let h = Harness::new();
    let mut req = h.create_request("c1", &serde_json::json!({}));
    req.rootfs = lcow_layer_rootfs(&h, "c1");

    h.service.do_create(&req).unwrap();

    let disks = h.launcher.disks();
    let names: Vec<_> = disks
        .iter()
        .map(|d| {
            let p = d.path.strip_prefix(h.dir.path().join("layers/c1")).unwrap();
            (p.display().to_string().replace('\\', "/"), d.read_only)
        })
        .collect();
    assert_eq!(
        names,
        [
            ("base/layer.vhd".to_owned(), true),
            ("top/layer.vhd".to_owned(), true),
            ("scratch/sandbox.vhdx".to_owned(), false),
        ]
    );
    let spec = h.vm().spec("c1").unwrap();
    assert_eq!(spec.rootfs, "/run/lcow/layers/c1/rootfs");
    assert_eq!(
        spec.layers,
        Some(lcow_protocol::layers::LayeredRootfs::new(vec![0, 1], 2).unwrap())
    );
    assert!(h.host.calls().is_empty(), "nothing is mounted on the host");
}

#[test]
fn test_lcow_layer_rootfs_joining_a_running_vm_is_refused_by_name() {
    let h = Harness::new();
    h.create("sandbox");
    let mut req = h.create_request("app", &serde_json::json!({}));
    req.rootfs = lcow_layer_rootfs(&h, "app");

    let e = h.service.do_create(&req).unwrap_err();

    assert!(matches!(e, ShimError::FailedPrecondition(_)), "{e}");
    assert!(
        e.to_string().contains("adding disks to a running vm"),
        "{e}"
    );
    h.start("sandbox", "").unwrap();
}

#[test]
fn test_lcow_layer_rootfs_with_a_missing_disk_is_invalid() {
    let h = Harness::new();
    let mut req = h.create_request("c1", &serde_json::json!({}));
    req.rootfs = lcow_layer_rootfs(&h, "c1");
    std::fs::remove_file(h.dir.path().join("layers/c1/top/layer.vhd")).unwrap();

    let e = h.service.do_create(&req).unwrap_err();

    assert!(matches!(e, ShimError::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("layer.vhd"), "{e}");
    assert_eq!(h.launcher.boots(), 0);
}
