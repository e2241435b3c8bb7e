//! `--input`: files, directories (walked for `*.nc`) and glob patterns, expanded into the list
//! of NetCDF files a job reads. Paths are taken whole: never split on commas.

use std::path::{Component, Path, PathBuf};

use anyhow::Result;

use crate::harness::UsageError;

/// The environment fallback's separator between inputs: a newline or `:` (the path-list
/// separator, which no input path contains on Unix).
pub fn split_env_inputs(value: &str) -> Vec<PathBuf> {
    value
        .split(['\n', ':'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands every input: a directory into its `*.nc` files (recursively, sorted), a pattern into
/// the paths it matches (sorted); a plain path is kept as given (a missing file is reported when
/// it is opened, naming it). A directory without NetCDF files or a pattern that matches
/// nothing is a usage error. Duplicates are dropped, first appearance kept.
pub fn expand_inputs(specs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for spec in specs {
        let text = spec.to_string_lossy();
        let found = if has_wildcard(&text) && !spec.exists() {
            let matched = glob(spec);
            if matched.is_empty() {
                return Err(
                    UsageError(format!("--input {text}: the pattern matches no file")).into(),
                );
            }
            let mut files = Vec::new();
            for m in matched {
                if m.is_dir() {
                    files.extend(walk_nc(&m)?);
                } else {
                    files.push(m);
                }
            }
            files
        } else if spec.is_dir() {
            let files = walk_nc(spec)?;
            if files.is_empty() {
                return Err(UsageError(format!(
                    "--input {text}: the directory holds no *.nc file (searched recursively)"
                ))
                .into());
            }
            files
        } else {
            vec![spec.clone()]
        };
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// Every `*.nc` file under `dir`, sorted; hidden entries skipped.
fn walk_nc(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            UsageError(format!(
                "--input {}: cannot list the directory: {e}",
                d.display()
            ))
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("nc"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Paths matching a pattern whose components may hold `*`, `?` and `[abc]` (never `/`).
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = match comp {
            Component::Normal(p) => p.to_string_lossy().into_owned(),
            other => {
                for c in &mut current {
                    c.push(other.as_os_str());
                }
                continue;
            }
        };
        if !has_wildcard(&part) {
            for c in &mut current {
                c.push(&part);
            }
            current.retain(|c| c.exists());
            continue;
        }
        let mut next = Vec::new();
        for base in &current {
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| wildcard_match(part.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        current = next;
    }
    current
}

/// Shell-style match of one path component.
fn wildcard_match(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard_match(&p[1..], s) || (!s.is_empty() && wildcard_match(p, &s[1..]))
        }
        (Some(b'?'), Some(_)) => wildcard_match(&p[1..], &s[1..]),
        (Some(b'['), Some(&c)) => match p.iter().position(|&b| b == b']') {
            Some(end) if end > 1 => {
                let set = &p[1..end];
                let (negate, set) = match set.first() {
                    Some(b'!' | b'^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == b'-' {
                        hit |= (set[i]..=set[i + 2]).contains(&c);
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && wildcard_match(&p[end + 1..], &s[1..])
            }
            _ => c == b'[' && wildcard_match(&p[1..], &s[1..]),
        },
        (Some(a), Some(b)) => a == b && wildcard_match(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"tas*_day_*.nc", b"tasmax_day_X_ssp245.nc"));
        assert!(!wildcard_match(b"tas*.nc", b"pr_day.nc"));
        assert!(wildcard_match(b"pr_20[12]?.nc", b"pr_2015.nc"));
        assert!(!wildcard_match(b"pr_20[!12]?.nc", b"pr_2015.nc"));
    }

    #[test]
    fn env_inputs_split_on_newline_and_colon_never_comma() {
        assert_eq!(
            split_env_inputs("/data/a,b.nc:/data/dir\n/data/c.nc\n"),
            [
                PathBuf::from("/data/a,b.nc"),
                PathBuf::from("/data/dir"),
                PathBuf::from("/data/c.nc")
            ]
        );
    }

    #[test]
    fn directories_globs_and_files_expand() {
        let root = std::env::temp_dir().join(format!("inputs-test-{}", std::process::id()));
        let sub = root.join("ssp245/day");
        std::fs::create_dir_all(&sub).unwrap();
        for n in ["tasmax_a.nc", "pr_a.nc", "readme.txt"] {
            std::fs::write(sub.join(n), b"x").unwrap();
        }
        std::fs::write(root.join("b,c.nc"), b"x").unwrap();
        let got = expand_inputs(&[
            root.join("ssp245"),
            root.join("*/day/tas*.nc"),
            root.join("b,c.nc"),
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                sub.join("pr_a.nc"),
                sub.join("tasmax_a.nc"),
                root.join("b,c.nc")
            ]
        );
        assert!(expand_inputs(&[root.join("*.zarr")]).is_err());
        std::fs::create_dir_all(root.join("empty")).unwrap();
        assert!(expand_inputs(&[root.join("empty")]).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
