//! The layering rules of docs/ARCHITECTURE.md, checked on the source text:
//! the harness knows no job and no domain module; the pure domain modules
//! know neither the harness nor the store. A `use` that breaks a rule fails
//! here with the file and line, before it becomes a habit.

use std::path::{Path, PathBuf};

/// Top-level modules of the crate that `module` may not name.
fn forbidden_for(module: &str) -> &'static [&'static str] {
    match module {
        "harness" => &[
            "jobs",
            "climate",
            "hazard",
            "probability",
            "cache",
            "store",
            "demo",
            "canary",
            "scope",
            "ops",
            "manifest",
        ],
        "climate" | "hazard" | "probability" | "cache" | "risk" => {
            &["harness", "store", "jobs", "ops", "manifest"]
        }
        _ => &[],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate-level modules a source text names through `crate::…`, with the
/// line they are named on. Handles `crate::a::b`, `crate::{a, b::c}` and
/// paths used inline (`crate::store::x(..)`).
fn crate_modules(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((n + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push((n + 1, name));
            }
        }
    }
    found
}

#[test]
fn layers_import_only_what_the_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for module in [
        "harness",
        "climate",
        "hazard",
        "probability",
        "cache",
        "risk",
    ] {
        let mut files = Vec::new();
        rust_files(&src.join(module), &mut files);
        let single = src.join(format!("{module}.rs"));
        if single.exists() {
            files.push(single);
        }
        assert!(!files.is_empty(), "no source files for module {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            checked += 1;
            for (line, name) in crate_modules(&text) {
                if forbidden_for(module).contains(&name.as_str()) {
                    violations.push(format!(
                        "{}:{line}: `{module}` must not use `crate::{name}`",
                        file.strip_prefix(&src).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} files checked");
    assert!(
        violations.is_empty(),
        "layering rules broken (docs/ARCHITECTURE.md, Layers):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_every_form_of_path() {
    let text = "use crate::store::bulk;\nuse crate::{jobs, hazard::Unit};\n\
                let x = crate::harness::run(j); // crate::ops in a comment\n";
    let names: Vec<String> = crate_modules(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["store", "jobs", "hazard", "harness"]);
}

/// Nothing in the repository points at a document outside it.
#[test]
fn no_file_refers_to_a_document_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    // Built, not written, so this file does not name them itself.
    let needles = [
        format!("{}/{}", "..", "shared"),
        format!("{}{}.md", "DES", "IGN"),
    ];
    let mut hits = Vec::new();
    let mut checked = 0;
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let Ok(text) = std::fs::read_to_string(root.join(&name)) else {
            continue; // binary files
        };
        checked += 1;
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|x| line.contains(x.as_str())) {
                hits.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(checked > 50, "only {checked} files read");
    assert!(
        hits.is_empty(),
        "references outside the repository:\n{}",
        hits.join("\n")
    );
}

/// The declared `rust-version` is the toolchain the image builds with, so
/// the declaration is checked by every CI build rather than being a guess.
#[test]
fn rust_version_matches_the_image_toolchain() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let declared = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("Cargo.toml declares rust-version");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split('-').next())
        .expect("Dockerfile builds FROM rust:<version>-…")
        .to_string();
    assert_eq!(
        declared, image,
        "Cargo.toml rust-version vs Dockerfile's rust image"
    );
    assert_eq!(env!("CARGO_PKG_RUST_VERSION"), declared);
}

/// CONTRIBUTING.md's checklist for adding a job, checked: every job binary
/// is in the registry, the image's binary list, the Dockerfile's build and
/// copy lines, jobs.yaml and the smoke run.
#[test]
fn every_job_is_in_every_place_a_job_lives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut binaries: Vec<String> = std::fs::read_dir(root.join("src/bin"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    binaries.sort();
    assert!(binaries.len() >= 5, "binaries: {binaries:?}");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let jobs_yaml = std::fs::read_to_string(root.join("jobs.yaml")).unwrap();
    let smoke = std::fs::read_to_string(root.join("src/ops/smoke.rs")).unwrap();
    let mut missing = Vec::new();
    for bin in &binaries {
        let mut need = |ok: bool, place: &str| {
            if !ok {
                missing.push(format!("{bin}: missing from {place}"));
            }
        };
        need(
            climate_jobs::manifest::IMAGE_BINARIES.contains(&bin.as_str()),
            "manifest::IMAGE_BINARIES",
        );
        need(
            dockerfile.contains(&format!("/src/target/release/{bin} ")),
            "the Dockerfile's COPY --from=build list",
        );
        need(
            dockerfile.lines().any(|l| {
                l.contains("for bin in")
                    && l.split_whitespace().any(|w| w.trim_end_matches(';') == bin)
            }),
            "the Dockerfile's dependency-layer stand-ins (`for bin in …`)",
        );
        need(
            jobs_yaml.contains(&format!("binary: {bin}\n")),
            "jobs.yaml (`binary:`)",
        );
        need(
            smoke.contains(&format!("binary: \"{bin}\"")),
            "the smoke run (src/ops/smoke.rs)",
        );
        if bin != "jobctl" {
            need(
                climate_jobs::jobs::JOB_NAMES.contains(&bin.as_str()),
                "the job registry (jobs::JOB_NAMES)",
            );
        }
    }
    let mut registered: Vec<&str> = climate_jobs::jobs::JOB_NAMES.to_vec();
    registered.sort();
    let jobs: Vec<&str> = binaries
        .iter()
        .map(String::as_str)
        .filter(|b| *b != "jobctl")
        .collect();
    assert_eq!(registered, jobs, "jobs::JOB_NAMES vs src/bin/");
    assert!(
        missing.is_empty(),
        "CONTRIBUTING.md, Adding a job:\n{}",
        missing.join("\n")
    );
}

/// One home per table: the SQL of `dead_letters` lives in
/// `harness/dead_letter.rs` only, so its states and transitions are in one
/// place.
#[test]
fn dead_letters_sql_lives_in_one_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let home = src.join("harness/dead_letter.rs");
    let mut strays = Vec::new();
    for file in files.iter().filter(|f| **f != home) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.to_ascii_uppercase();
            if [
                "FROM DEAD_LETTERS",
                "UPDATE DEAD_LETTERS",
                "INTO DEAD_LETTERS",
                "JOIN DEAD_LETTERS",
            ]
            .iter()
            .any(|s| l.contains(s))
            {
                strays.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    let home_text = std::fs::read_to_string(&home).unwrap();
    assert!(home_text.contains("UPDATE dead_letters"), "the home moved?");
    assert!(
        strays.is_empty(),
        "dead_letters SQL outside harness/dead_letter.rs:\n{}",
        strays.join("\n")
    );
}
