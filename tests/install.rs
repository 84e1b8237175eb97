//! `scripts/install`: the installed binary starts from another folder with
//! the shared libraries and CPU modules copied beside it (the default
//! `cpu-variants` build), and loads its CPU module from there.

use std::path::Path;
use std::process::Command;

#[test]
fn the_installed_binary_loads_its_libraries_and_cpu_module_from_beside_it() {
    let exe = Path::new(env!("CARGO_BIN_EXE_infill"));
    // CARGO_BIN_EXE_infill is <target>/release/infill.
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in <target>/<profile>/");
    let prefix = std::env::temp_dir().join(format!("infill-install-{}", std::process::id()));
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run scripts/install");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = prefix.join("bin").join("infill");
    let dir = prefix.join("work");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.py");
    std::fs::write(&file, "def add(a, b):\n    return \n").unwrap();
    let out = Command::new(&installed)
        .arg("complete")
        .arg(format!("{}:2:11", file.display()))
        .args(["--no-cross-file", "--threads", "2"])
        .env("INFILL_LOG", "infill=info,llama-cpp-2=info")
        .output()
        .expect("run the installed infill");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let lib = prefix.join("lib").join("infill");
    if cfg!(feature = "cpu-variants") {
        assert!(
            log.contains(&format!("loaded CPU backend from {}", lib.display())),
            "the CPU module must come from the install: {log}"
        );
    }
    assert!(log.contains("model ready"), "{log}");
    std::fs::remove_dir_all(&prefix).unwrap();
}
