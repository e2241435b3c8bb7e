//! The Dockerfile, checked without a Docker engine (none runs here):
//! `hadolint` reports nothing; the build and copy lines name every binary in
//! src/bin/; the runtime stage installs packages that provide every shared
//! library `ldd` reports for the built binaries (soname → file → Debian
//! package with `dpkg -S`, then the installed dependency closure of the
//! packages the runtime stage names, with `dpkg-query`).

use crate::deploy_support;

use std::collections::{BTreeSet, VecDeque};
use std::process::Command;

use climate_jobs::manifest::IMAGE_BINARIES;
use deploy_support::{repo, run, scratch, tool};

fn dockerfile() -> String {
    std::fs::read_to_string(repo().join("Dockerfile")).unwrap()
}

/// Logical instructions (continuation lines joined, comments dropped) per
/// stage, stages in order.
fn stages() -> Vec<Vec<String>> {
    let mut stages: Vec<Vec<String>> = Vec::new();
    let mut current = String::new();
    for line in dockerfile().lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                let instr = std::mem::take(&mut current);
                if instr.starts_with("FROM ") {
                    stages.push(Vec::new());
                }
                if let Some(stage) = stages.last_mut() {
                    stage.push(instr);
                }
            }
        }
    }
    stages
}

fn binary_path(name: &str) -> &'static str {
    match name {
        "jobctl" => env!("CARGO_BIN_EXE_jobctl"),
        "hazard-timeseries-batch" => env!("CARGO_BIN_EXE_hazard-timeseries-batch"),
        "probability-batch" => env!("CARGO_BIN_EXE_probability-batch"),
        "site-risk-batch" => env!("CARGO_BIN_EXE_site-risk-batch"),
        "cache-refresh" => env!("CARGO_BIN_EXE_cache-refresh"),
        "dlq-reprocess" => env!("CARGO_BIN_EXE_dlq-reprocess"),
        other => panic!("no CARGO_BIN_EXE for {other}: add it here"),
    }
}

#[test]
fn hadolint_reports_nothing() {
    let done = run(Command::new(tool("hadolint"))
        .args(["--no-color"])
        .arg(repo().join("Dockerfile")));
    assert_eq!(done.code, 0, "{}", done.all());
    assert_eq!(done.stdout.trim(), "", "{}", done.all());
}

#[test]
fn hadolint_flags_a_bad_dockerfile() {
    // The control: hadolint must actually lint.
    let path = scratch("hadolint").join("Dockerfile");
    std::fs::write(
        &path,
        "FROM debian\nRUN cd /tmp && apt-get install -y curl\n",
    )
    .unwrap();
    let done = run(Command::new(tool("hadolint")).arg("--no-color").arg(&path));
    assert_ne!(done.code, 0, "{}", done.all());
    assert!(done.stdout.contains("DL3003"), "{}", done.all());
}

#[test]
fn build_stage_builds_and_stubs_every_binary() {
    let stages = stages();
    assert!(stages.len() >= 2, "expected a multi-stage Dockerfile");
    let build = stages[0].join("\n");
    let builds = build
        .matches("cargo build --release --locked --bins")
        .count();
    assert_eq!(
        builds, 2,
        "dependency layer + project build, both --release --locked --bins:\n{build}"
    );
    let deps_layer = stages[0]
        .iter()
        .find(|i| i.contains("fn main() {}"))
        .expect("a dependency layer with stand-in binaries");
    for bin in IMAGE_BINARIES {
        assert!(
            deps_layer.contains(&format!(" {bin} ")) || deps_layer.contains(&format!(" {bin};")),
            "the dependency layer has no stand-in for {bin}: {deps_layer}"
        );
    }
    let copy_lock = stages[0]
        .iter()
        .position(|i| i.starts_with("COPY Cargo.toml Cargo.lock"));
    let copy_src = stages[0].iter().position(|i| i.starts_with("COPY src"));
    assert!(
        copy_lock < copy_src,
        "Cargo.toml/lock must be copied before src/ for the cache"
    );
}

#[test]
fn runtime_stage_copies_every_binary_onto_path_and_runs_non_root() {
    let stages = stages();
    let runtime = stages.last().unwrap();
    let copy = runtime
        .iter()
        .find(|i| i.starts_with("COPY --from=build"))
        .expect("a COPY --from=build of the binaries");
    let words: Vec<&str> = copy.split_whitespace().collect();
    assert_eq!(words.last(), Some(&"/usr/local/bin/"), "{copy}");
    for bin in IMAGE_BINARIES {
        assert!(
            words.contains(&format!("/src/target/release/{bin}").as_str()),
            "{bin} is not copied into the image: {copy}"
        );
    }
    let user = runtime
        .iter()
        .rfind(|i| i.starts_with("USER "))
        .expect("USER");
    let uid = user["USER ".len()..].split(':').next().unwrap_or("");
    assert!(
        uid.parse::<u32>()
            .is_ok_and(|u| u == climate_jobs::manifest::k8s::RUN_AS_USER),
        "USER must be numeric and match the rendered runAsUser: {user}"
    );
    for i in runtime
        .iter()
        .filter(|i| i.starts_with("CMD") || i.starts_with("ENTRYPOINT"))
    {
        let arg = i.split_once(' ').map(|(_, a)| a.trim()).unwrap_or("");
        assert!(
            arg.starts_with('['),
            "shell form needs a shell at run time: {i}"
        );
    }
}

/// Packages the runtime stage's `apt-get install` lines name.
fn runtime_packages() -> Vec<String> {
    let stages = stages();
    let mut pkgs = Vec::new();
    for instr in stages
        .last()
        .unwrap()
        .iter()
        .filter(|i| i.starts_with("RUN "))
    {
        for cmd in instr.split("&&") {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            if let Some(i) = words.iter().position(|w| *w == "install")
                && words[..i].contains(&"apt-get")
            {
                pkgs.extend(
                    words[i + 1..]
                        .iter()
                        .filter(|w| !w.starts_with('-'))
                        .map(|w| w.to_string()),
                );
            }
        }
    }
    pkgs
}

fn command_stdout(cmd: &mut Command) -> Option<String> {
    let done = run(cmd);
    (done.code == 0).then_some(done.stdout)
}

/// The Debian package owning a library file (trying the merged-/usr twin).
fn owner(path: &str) -> Option<String> {
    let real = std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string());
    let mut candidates = vec![path.to_string(), real.clone()];
    for p in [path, real.as_str()] {
        if let Some(rest) = p.strip_prefix("/usr") {
            candidates.push(rest.to_string());
        } else {
            candidates.push(format!("/usr{p}"));
        }
    }
    candidates.iter().find_map(|c| {
        let out = command_stdout(Command::new("dpkg").args(["-S", c]))?;
        let first = out.lines().next()?;
        let pkg = first.split(':').next()?.trim();
        Some(pkg.to_string())
    })
}

/// The packages `pkgs` pull in, as installed here (Depends + Pre-Depends,
/// any installed alternative), plus the base image's `Priority: required` set.
fn closure(pkgs: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<String> = pkgs.iter().cloned().collect();
    while let Some(p) = queue.pop_front() {
        if !seen.insert(p.clone()) {
            continue;
        }
        let Some(deps) = command_stdout(Command::new("dpkg-query").args([
            "-W",
            "-f",
            "${Depends}, ${Pre-Depends}",
            &p,
        ])) else {
            continue;
        };
        for alt in deps.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            for choice in alt.split('|') {
                let name = choice.split_whitespace().next().unwrap_or("");
                let name = name.split(':').next().unwrap_or("");
                if !name.is_empty() {
                    queue.push_back(name.to_string());
                }
            }
        }
    }
    seen
}

fn required_packages() -> BTreeSet<String> {
    let out =
        command_stdout(Command::new("dpkg-query").args(["-W", "-f", "${Package} ${Priority}\n"]))
            .expect("dpkg-query (this test needs a Debian host)");
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, prio)| *prio == "required")
        .map(|(p, _)| p.to_string())
        .collect()
}

#[test]
fn runtime_stage_provides_every_shared_library_ldd_reports() {
    let codename = std::fs::read_to_string("/etc/os-release")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(String::from))
        .unwrap_or_default();
    let runtime_from = stages().last().unwrap()[0].clone();
    assert!(
        runtime_from.contains(&format!("-{codename}"))
            || runtime_from.contains(&format!(":{codename}")),
        "the runtime image ({runtime_from}) must be the Debian release this host builds on \
         ({codename}) for ldd's answer to say anything about it"
    );
    let pkgs = runtime_packages();
    assert!(pkgs.iter().any(|p| p.starts_with("libnetcdf")), "{pkgs:?}");
    let provided: BTreeSet<String> = closure(&pkgs)
        .union(&required_packages())
        .cloned()
        .collect();

    let mut missing = Vec::new();
    let mut libs = 0;
    let mut owners: std::collections::BTreeMap<String, Option<String>> = Default::default();
    for bin in IMAGE_BINARIES {
        let out = command_stdout(Command::new("ldd").arg(binary_path(bin)))
            .unwrap_or_else(|| panic!("ldd {bin} failed"));
        for line in out.lines() {
            // "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x…)"
            let Some((soname, rest)) = line.trim().split_once(" => ") else {
                continue; // the vDSO and the dynamic loader (libc6)
            };
            let path = rest.split_whitespace().next().unwrap_or("");
            assert!(
                path.starts_with('/'),
                "{bin}: {soname} not found by ldd: {line}"
            );
            libs += 1;
            let pkg = owners
                .entry(path.to_string())
                .or_insert_with(|| owner(path))
                .clone();
            match pkg {
                Some(pkg) if provided.contains(&pkg) => {}
                Some(pkg) => missing.push(format!("{bin}: {soname} ({path}) from {pkg}")),
                None => missing.push(format!("{bin}: {soname} ({path}) belongs to no package")),
            }
        }
    }
    assert!(
        libs > 10,
        "ldd reported only {libs} libraries: is this the NetCDF build?"
    );
    assert!(
        missing.is_empty(),
        "the runtime stage installs {pkgs:?}, which does not provide:\n{}",
        missing.join("\n")
    );
}
