//! `jobctl datasets`: every dataset (scenario, model, member, grid) with
//! where its identity came from, its files and its row counts.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::harness::ExitCode;
use crate::harness::args::DatabaseArgs;
use crate::harness::database::Database;
use crate::store::datasets::{DatasetSummary, list};

/// Renders datasets as an aligned table, each dataset's files indented below it.
pub fn render_table(datasets: &[DatasetSummary]) -> String {
    if datasets.is_empty() {
        return "no datasets recorded (run hazard-timeseries-batch)\n".into();
    }
    let header = [
        "ID",
        "SCENARIO",
        "MODEL",
        "MEMBER",
        "GRID",
        "FROM",
        "HAZARD ROWS",
        "PROB ROWS",
        "FILES",
        "UPDATED (UTC)",
    ];
    let rows: Vec<[String; 10]> = datasets
        .iter()
        .map(|d| {
            [
                d.id.to_string(),
                d.scenario.clone(),
                d.model.clone(),
                d.member.clone(),
                if d.grid.is_empty() {
                    "-".into()
                } else {
                    d.grid.clone()
                },
                d.convention.clone(),
                d.hazard_rows.to_string(),
                d.probability_rows.to_string(),
                d.files.len().to_string(),
                d.updated_at.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(s, "{cell:<w$}  ");
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(&header.map(String::from));
    for (row, d) in rows.iter().zip(datasets) {
        out.push_str(&line(row));
        for f in &d.files {
            let _ = writeln!(out, "    {f}");
        }
    }
    out
}

pub async fn run(args: &DatabaseArgs, json: bool) -> Result<ExitCode> {
    let db = Database::from_args(args)?;
    let client = db.connect("jobctl/datasets").await?;
    let datasets = list(&client)
        .await
        .context("listing datasets (has `jobctl migrate` run?)")?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&datasets).context("encoding datasets as JSON")?
        );
    } else {
        print!("{}", render_table(&datasets));
    }
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_identity_counts_and_files() {
        let d = DatasetSummary {
            id: 3,
            scenario: "rcp85".into(),
            model: "MPI-M-MPI-ESM-LR/CLMcom-CCLM4-8-17".into(),
            member: "r1i1p1".into(),
            grid: "EUR-11".into(),
            convention: "CORDEX".into(),
            attributes: serde_json::json!({}),
            files: vec!["/data/a.nc".into(), "/data/b.nc".into()],
            hazard_rows: 90,
            probability_rows: 0,
            updated_at: "2026-11-29 10:00:00".into(),
        };
        let out = render_table(&[d]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("ID  SCENARIO  MODEL"), "{out}");
        assert!(
            lines[1]
                .contains("rcp85     MPI-M-MPI-ESM-LR/CLMcom-CCLM4-8-17  r1i1p1  EUR-11  CORDEX"),
            "{out}"
        );
        assert_eq!(lines[2], "    /data/a.nc");
        assert_eq!(
            render_table(&[]),
            "no datasets recorded (run hazard-timeseries-batch)\n"
        );
    }
}
