//! Release links on Linux: packed relocations for both programs, and a
//! front (`quotatrack`) linked statically.
//!
//! **Packed relocations.** A position-independent executable has every
//! pointer in its read-only data (vtables, string tables, clap's and
//! serde's descriptions) patched by the loader at each start: about 7,500
//! relative relocations, kept as 24-byte entries, 180 KB of the binary.
//! Packed (`DT_RELR`, glibc 2.36 and binutils 2.38 or later, both in Debian
//! 12), the same relocations take a few kilobytes and are applied faster;
//! nothing else changes.
//!
//! **A static front.** `quotatrack status` is run by status lines again and
//! again, and a dynamically linked program spends most of a short run in the
//! loader: mapping libc, resolving its symbols, relocating. Linked as a
//! static position-independent executable (glibc's `libc.a`, address space
//! randomisation kept), the front starts in about two thirds of the time.
//! The engine stays dynamic: it resolves host names through the system's
//! resolver configuration, which a static glibc serves only in part.
//!
//! Rust's standard library asks for `-lgcc_s -lutil -lrt -lpthread -lm -ldl
//! -lc` as shared libraries unless the whole build is `crt-static`, which
//! Cargo cannot set for one program. So the front's link is given a search
//! directory, ahead of the system's, where each of those names is a linker
//! script naming the static archive instead (`libgcc_s` becomes `libgcc_eh`,
//! the unwinder). Everything is checked first: a toolchain without the
//! archives, another linker, another target or a debug build links as
//! before. Only the `[[bin]]` targets of release builds are affected:
//! dependencies, proc macros and tests are untouched.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    bundle_fixtures();
    println!("cargo:rerun-if-env-changed=QUOTATRACK_DYNAMIC_FRONT");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("PROFILE") != "release" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    let glibc = var("CARGO_CFG_TARGET_ENV") == "gnu";
    let native = var("TARGET") == var("HOST");
    // A linker of the user's own (`RUSTC_LINKER`, or `-C linker` in the
    // flags) may not take these flags.
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || var("CARGO_ENCODED_RUSTFLAGS")
            .split('\x1f')
            .any(|flag| flag.contains("linker") || flag.contains("link-self-contained"));
    if glibc && native && !own_linker && std::env::var_os("QUOTATRACK_DYNAMIC_FRONT").is_none() {
        let out = PathBuf::from(var("OUT_DIR")).join("static-front");
        match static_libraries(&out) {
            Ok(()) => {
                println!("cargo:rustc-link-arg-bin=quotatrack=-static-pie");
                println!("cargo:rustc-link-arg-bin=quotatrack=-L{}", out.display());
            }
            Err(why) => println!("cargo:warning=quotatrack (the front) is linked dynamically: {why}"),
        }
    }
}

/// Writes into `dir` a linker script for each library the standard library
/// asks for, naming glibc's and GCC's static archives.
fn static_libraries(dir: &Path) -> Result<(), String> {
    let libc = archive("libc.a")?;
    let libgcc = archive("libgcc.a")?;
    let unwinder = archive("libgcc_eh.a")?;
    // The start file of a static position-independent program.
    archive("rcrt1.o")?;
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let mut scripts = vec![
        // libc, libgcc and the unwinder refer to each other.
        ("libc.so".to_owned(), format!("GROUP({libc} {libgcc} {unwinder})")),
        ("libgcc_s.so".to_owned(), format!("INPUT({unwinder})")),
    ];
    for name in ["m", "pthread", "dl", "rt", "util"] {
        let library = archive(&format!("lib{name}.a"))?;
        scripts.push((format!("lib{name}.so"), format!("INPUT({library})")));
    }
    for (name, script) in scripts {
        let path = dir.join(name);
        std::fs::write(&path, format!("{script}\n"))
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    Ok(())
}

/// The full path of a file the linker driver (`cc`, as rustc runs it)
/// links from, as it finds it; an error when it finds none (it then
/// answers with the bare name). A change to the file (a new compiler or C
/// library) links the front again.
fn archive(name: &str) -> Result<String, String> {
    let compiler = "cc";
    let output = Command::new(compiler)
        .arg(format!("-print-file-name={name}"))
        .output()
        .map_err(|error| format!("cannot run {compiler}: {error}"))?;
    let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let path = Path::new(&found);
    if !output.status.success() || !path.is_absolute() || !path.exists() {
        return Err(format!("{compiler} has no {name}"));
    }
    let path = path.canonicalize().map_err(|error| format!("{found}: {error}"))?;
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))?;
    if text.contains([' ', '(', ')', '"']) {
        return Err(format!("{text}: a path a linker script cannot name"));
    }
    println!("cargo:rerun-if-changed={text}");
    Ok(text.to_owned())
}

/// The provider fixtures `demo` runs from (`scenario::BUNDLED`), as they
/// are compiled in: `OUT_DIR/fixtures/<provider>/<name>.json`, each the
/// recorded file without the whitespace between its tokens (a third of
/// it, indentation mostly), every string and number byte for byte.
fn bundle_fixtures() {
    let from = Path::new("fixtures/providers");
    println!("cargo:rerun-if-changed={}", from.display());
    let to = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("fixtures");
    let providers = std::fs::read_dir(from).expect("fixtures/providers is part of the package");
    for provider in providers.flatten().filter(|entry| entry.path().is_dir()) {
        println!("cargo:rerun-if-changed={}", provider.path().display());
        let dir = to.join(provider.file_name());
        std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
        for file in std::fs::read_dir(provider.path())
            .expect("a fixture directory")
            .flatten()
        {
            let path = file.path();
            if path.extension().is_some_and(|extension| extension == "json") {
                let text = std::fs::read(&path).expect("a fixture file");
                std::fs::write(dir.join(file.file_name()), without_spaces(&text)).expect("OUT_DIR is writable");
            }
        }
    }
}

/// JSON text without the whitespace outside its strings.
fn without_spaces(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            out.push(byte);
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = byte == b'"';
            out.push(byte);
        }
    }
    out
}
