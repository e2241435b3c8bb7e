//! `jobctl render k8s|aca`: jobs.yaml → scheduler manifests.
//!
//! `--out -` (the default) writes every job as one multi-document YAML
//! stream on stdout; `--out DIR` writes `DIR/<job>.yaml`, one job per file
//! (what `az containerapp job create --yaml` takes).

use std::path::Path;

use serde_json::Value;

use crate::harness::ExitCode;
use crate::manifest::{self, JobsFile};

/// Reads and validates jobs.yaml; problems go to stderr as `jobctl check`
/// prints them.
pub fn load(path: &Path) -> Result<JobsFile, ExitCode> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("{}: cannot read: {e}", path.display());
        ExitCode::Usage
    })?;
    manifest::parse(&text).map_err(|errors| {
        for e in &errors {
            eprintln!("{}: {e}", path.display());
        }
        eprintln!(
            "{}: {} problem(s); nothing was rendered (see `jobctl check`)",
            path.display(),
            errors.len()
        );
        ExitCode::Usage
    })
}

/// Writes rendered documents to stdout (`-`) or one file per job in `out`.
pub fn write(docs: &[(String, Value)], out: &Path) -> ExitCode {
    if out == Path::new("-") {
        let values: Vec<Value> = docs.iter().map(|(_, v)| v.clone()).collect();
        return match manifest::to_yaml(&values) {
            Ok(text) => {
                print!("{text}");
                ExitCode::Success
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::Failed
            }
        };
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("{}: cannot create: {e}", out.display());
        return ExitCode::Usage;
    }
    for (name, doc) in docs {
        let path = out.join(format!("{name}.yaml"));
        let text = match manifest::to_yaml(std::slice::from_ref(doc)) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("job `{name}`: {e}");
                return ExitCode::Failed;
            }
        };
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("{}: cannot write: {e}", path.display());
            return ExitCode::Usage;
        }
        eprintln!("wrote {}", path.display());
    }
    ExitCode::Success
}
