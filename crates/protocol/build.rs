//! Compiles `protos/agent.proto` into Rust (messages and the sync ttrpc client and server)
//! with ttrpc-codegen's pure-Rust parser: no `protoc` needed.

use ttrpc_codegen::{Codegen, Customize, ProtobufCustomize};

fn main() {
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned());
    let out = std::path::Path::new(&out).join("proto");
    if let Err(e) = std::fs::create_dir_all(&out) {
        panic!("cannot create {}: {e}", out.display());
    }
    println!("cargo:rerun-if-changed=protos/agent.proto");
    let result = Codegen::new()
        .out_dir(&out)
        .inputs(["protos/agent.proto"])
        .include("protos")
        .rust_protobuf()
        .customize(Customize {
            gen_mod: true,
            ..Default::default()
        })
        .rust_protobuf_customize(ProtobufCustomize::default().gen_mod_rs(true))
        .run();
    if let Err(e) = result {
        panic!("ttrpc-codegen failed on protos/agent.proto: {e}");
    }
    // The generated files open with inner attributes and `//!` docs, which `include!` cannot
    // take inside a module: drop those lines (lib.rs puts the allows on the module instead).
    for name in ["mod.rs", "agent.rs", "agent_ttrpc.rs"] {
        let path = out.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => panic!("cannot read generated {}: {e}", path.display()),
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("#![") && !l.trim_start().starts_with("//!"))
            .collect();
        if let Err(e) = std::fs::write(&path, kept.join("\n")) {
            panic!("cannot write {}: {e}", path.display());
        }
    }
}
