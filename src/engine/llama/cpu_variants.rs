//! Which of the CPU's instruction sets llama.cpp's code uses.
//!
//! A plain build (the default) compiles llama.cpp's CPU code for one set
//! (AVX2, FMA, F16C, BMI2: every x86-64 CPU of the last ten years). With
//! the `cpu-variants` feature (opt-in; README, "CPU instruction sets",
//! says why) ggml builds its CPU
//! code once per instruction set (x86-64 baseline up to AVX-512 with VNNI,
//! BF16 and AMX) as loadable modules, and `load` lets ggml pick the best
//! module the CPU runs (its own scoring of each module's needs against
//! cpuid) before the backend starts: AVX-512 evaluates prompts about 1.6x
//! as fast as AVX2 on one core of these machines
//! (`scripts/bench-cpu-variants`).

use std::ffi::CStr;

/// The instruction sets llama.cpp's CPU code was built for, as it reports
/// them (`AVX2`, `AVX512`, `AVX512_VNNI`, ...), in its order.
pub(crate) fn cpu_features() -> Vec<String> {
    // SAFETY: llama.cpp returns a pointer to a static, NUL-terminated
    // buffer that it fills on each call; it is copied at once, and calls
    // come from the one thread that loads models (`backend()` callers).
    let info = unsafe {
        let ptr = llama_cpp_sys_2::llama_print_system_info();
        if ptr.is_null() {
            return Vec::new();
        }
        CStr::from_ptr(ptr).to_string_lossy().into_owned()
    };
    features_of(&info)
}

/// `CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ... |` → the names set to 1 in
/// the CPU section (the format of `llama_print_system_info`).
fn features_of(info: &str) -> Vec<String> {
    let Some(cpu) = info.split("CPU :").nth(1) else {
        return Vec::new();
    };
    let section = cpu.split(" : ").next().unwrap_or(cpu);
    section
        .split('|')
        .filter_map(|f| {
            let (name, on) = f.split_once('=')?;
            let name = name.trim();
            // The next backend's name ends the section (`... | CUDA : ...`).
            (on.trim() == "1" && !name.is_empty() && !name.contains(' ')).then(|| name.to_string())
        })
        .collect()
}

/// The widest vector instructions in use, for the engine's description
/// (`CPU AVX512, `), or nothing where llama.cpp does not say.
pub(crate) fn described() -> String {
    let features = cpu_features();
    let widest = ["AMX_INT8", "AVX512", "AVX2", "AVX", "SSE3"]
        .into_iter()
        .find(|w| features.iter().any(|f| f == w));
    widest.map(|w| format!("CPU {w}, ")).unwrap_or_default()
}

/// Loads llama.cpp's CPU modules: beside the executable where they are
/// there (an installed infill keeps them there), else from the build's
/// folder. An error where no CPU module could be loaded, naming where it
/// looked.
#[cfg(feature = "cpu-variants")]
pub(super) fn load() -> Result<(), String> {
    use std::path::{Path, PathBuf};
    let beside: Option<PathBuf> = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|dir| has_cpu_modules(dir));
    // `load_backends_from_path` takes UTF-8 paths only (it panics on
    // others): a folder it cannot take is passed over.
    match beside.as_deref().filter(|d| d.to_str().is_some()) {
        Some(dir) => llama_cpp_2::llama_backend::load_backends_from_path(dir),
        None => llama_cpp_2::llama_backend::load_backends(),
    }
    let cpu_loaded = llama_cpp_2::list_llama_ggml_backend_devices()
        .iter()
        .any(|d| d.backend.eq_ignore_ascii_case("cpu"));
    if cpu_loaded {
        tracing::info!(
            "llama.cpp CPU code for {}",
            cpu_features().join(" ").to_lowercase()
        );
        Ok(())
    } else {
        Err(format!(
            "no CPU module of llama.cpp could be loaded (libggml-cpu-*.so, looked beside the executable and in {}); an install must copy them beside the binary",
            llama_cpp_sys_2::BACKENDS_DIR.unwrap_or("the build's folder (unknown)")
        ))
    }
}

/// Whether `dir` holds ggml CPU modules (`libggml-cpu-haswell.so`, ...).
#[cfg(feature = "cpu-variants")]
fn has_cpu_modules(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("libggml-cpu") || n.starts_with("ggml-cpu"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_section_of_the_system_info() {
        let info = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | LLAMAFILE = 1 | REPACK = 1 | ";
        assert_eq!(
            features_of(info),
            ["SSE3", "SSSE3", "AVX", "AVX2", "LLAMAFILE", "REPACK"]
        );
        let two = "CUDA : ARCHS = 890 | CPU : AVX2 = 1 | AVX512 = 1 | ";
        assert_eq!(features_of(two), ["AVX2", "AVX512"]);
        assert!(features_of("nothing here").is_empty());
    }

    /// The instruction sets in use are the best this CPU has: with
    /// `cpu-variants` the module ggml picked, else the fixed AVX2 build.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn uses_the_widest_instructions_the_build_allows_on_this_cpu() {
        super::super::backend().expect("llama.cpp's backend starts");
        let features = cpu_features();
        let avx512 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq");
        let has = |f: &str| features.iter().any(|g| g == f);
        assert!(has("AVX2"), "{features:?}");
        if cfg!(feature = "cpu-variants") {
            assert_eq!(has("AVX512"), avx512, "{features:?}");
        } else {
            assert!(!has("AVX512"), "{features:?}");
        }
    }
}
