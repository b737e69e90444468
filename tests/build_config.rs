//! The build settings of `.cargo/config.toml` hold for every target: a CPU-specific setting
//! is given only to the targets that have that CPU (no other target can be built here, so
//! the file itself is checked).

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
