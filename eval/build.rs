//! infill built with `cpu-variants` is a set of shared libraries linked
//! beside the binaries (see infill's build.rs): `$ORIGIN` in the run path
//! finds them there. Harmless for a static build, which has nothing to find.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    }
}
