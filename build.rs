//! With `cpu-variants` llama.cpp is a set of shared libraries. Its build
//! (llama-cpp-sys-2) links them beside the binaries (target/<profile>/ and
//! its deps/) under their plain names only (`libllama.so`), while the
//! binaries ask for their sonames (`libllama.so.0`): this links the
//! sonames there too, and `$ORIGIN` in the run path lets the binaries and
//! tests find them as editors start them, without LD_LIBRARY_PATH. A build
//! without the feature links llama.cpp statically and needs nothing.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !linux || std::env::var_os("CARGO_FEATURE_CPU_VARIANTS").is_none() {
        return;
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    // llama-cpp-sys-2 (`links = "llama"`) says where its CPU modules are;
    // its shared libraries are in `lib/` beside them.
    let Some(backends) = std::env::var_os("DEP_LLAMA_BACKENDS_DIR") else {
        println!("cargo:warning=llama-cpp-sys-2 did not say where its libraries are");
        return;
    };
    let lib = Path::new(&backends).with_file_name("lib");
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    // OUT_DIR is target/<profile>/build/infill-<hash>/out.
    let Some(profile) = Path::new(&out).ancestors().nth(3).map(Path::to_path_buf) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&lib) else {
        println!("cargo:warning=no llama.cpp libraries in {}", lib.display());
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_soname(name) {
            continue;
        }
        for dir in [profile.clone(), profile.join("deps")] {
            link(&entry.path(), &dir.join(name));
        }
    }
}

/// `libllama.so.0`: a library name with exactly one version number.
fn is_soname(name: &str) -> bool {
    name.split_once(".so.")
        .is_some_and(|(_, v)| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
}

/// A hard link (a copy where links are refused) to the file itself (a
/// soname is a symbolic link to the versioned file, relative to its
/// folder), replacing any older file.
fn link(from: &Path, to: &PathBuf) {
    let from = std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    let from = from.as_path();
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        if let Err(e) = std::fs::copy(from, to) {
            println!("cargo:warning=cannot place {}: {e}", to.display());
        }
    }
}
