//! The build settings hold for every target: `.cargo/config.toml` gives a CPU-specific
//! setting only to the targets that have that CPU (no other target can be built here, so the
//! file itself is checked), and the release profile builds a binary without debug info.
use std::path::Path;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn config() -> Result<toml::Table, Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cargo/config.toml");
    Ok(std::fs::read_to_string(path)?.parse()?)
}

#[test]
fn the_avx512_backend_is_asked_for_only_on_x86_64() -> TestResult {
    let config = config()?;
    // Nothing CPU-specific for every target.
    let build_flags = config
        .get("build")
        .and_then(|b| b.get("rustflags"))
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        !build_flags.contains("avx512"),
        "[build] rustflags would give every target the AVX-512 backend: {build_flags}"
    );
    // Every table that asks for it is one of x86-64 alone.
    let targets = config
        .get("target")
        .and_then(toml::Value::as_table)
        .ok_or("no [target] tables")?;
    let mut found = false;
    for (name, table) in targets {
        let flags = table
            .get("rustflags")
            .map(ToString::to_string)
            .unwrap_or_default();
        if flags.contains("avx512") {
            assert!(
                name == "cfg(target_arch = \"x86_64\")" || name.starts_with("x86_64-"),
                "the AVX-512 backend is asked for on target {name}"
            );
            found = true;
        }
    }
    assert!(found, "x86-64 no longer asks for the AVX-512 backend");
    Ok(())
}

#[test]
fn the_release_binary_carries_no_debug_info_and_benches_keep_line_tables() -> TestResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(path)?.parse()?;
    let profile = |name: &str| {
        manifest
            .get("profile")
            .and_then(|p| p.get(name))
            .cloned()
            .ok_or_else(|| format!("no [profile.{name}]"))
    };
    // Test builds link ~90 binaries: dependencies without debug info, the workspace with line
    // tables only.
    let dev = profile("dev")?;
    assert_eq!(
        dev.get("debug").and_then(toml::Value::as_str),
        Some("line-tables-only")
    );
    let deps = dev
        .get("package")
        .and_then(|p| p.get("*"))
        .ok_or("no [profile.dev.package.\"*\"]")?;
    assert_eq!(deps.get("debug"), Some(&toml::Value::Boolean(false)));
    let release = profile("release")?;
    assert_eq!(release.get("debug"), Some(&toml::Value::Boolean(false)));
    assert_eq!(
        release.get("strip").and_then(toml::Value::as_str),
        Some("debuginfo"),
        "the release binary would keep the debug info of its dependencies"
    );
    // Benches inherit release's settings: profiling wants their line tables kept.
    let bench = profile("bench")?;
    assert_eq!(
        bench.get("debug").and_then(toml::Value::as_str),
        Some("line-tables-only")
    );
    assert_eq!(
        bench.get("strip").and_then(toml::Value::as_str),
        Some("none")
    );
    Ok(())
}
