//! Shared by the deploy tests (render, dockerfile): the repository paths,
//! running jobctl, and the deploy-check tools that scripts/ensure-deps.sh
//! installs into .tools/venv (override with CLIMATE_JOBS_TOOLS_VENV).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool in the deploy-check venv; fails (never skips) when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("CLIMATE_JOBS_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".tools/venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/ensure-deps.sh (it installs tools/deploy/requirements.txt)",
        path.display()
    );
    path
}

pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(cmd: &mut Command) -> Done {
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Done {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn jobctl(args: &[&str]) -> Done {
    run(Command::new(env!("CARGO_BIN_EXE_jobctl"))
        .current_dir(repo())
        .args(args))
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cj-deploy-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
