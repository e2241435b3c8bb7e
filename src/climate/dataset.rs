//! Datasets: which files belong together, and under which identity.
//!
//! A dataset is one model run of one experiment on one grid: CMIP6 `source_id`, `experiment_id`,
//! `variant_label`, `grid_label`; CORDEX (CMIP5 and CMIP6 conventions) the driving model and
//! member, the regional model, the domain and the experiment. Attributes a file lacks are taken
//! from its ESGF file name (`<var>_<table>_<source>_<experiment>_<member>_<grid>_<start>-<end>.nc`)
//! and then from the operator's labels. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Model or member of a file that says nothing about it, and was not labelled.
pub const UNKNOWN: &str = "unknown";

/// Where a file's identity was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    Cmip6,
    Cordex,
    /// No identity attributes: the ESGF file name.
    FileName,
    /// Neither: only labels (and `experiment_id`, if present).
    None,
}

impl Convention {
    pub fn name(self) -> &'static str {
        match self {
            Convention::Cmip6 => "CMIP6",
            Convention::Cordex => "CORDEX",
            Convention::FileName => "ESGF file name",
            Convention::None => "no identity attributes",
        }
    }
}

/// What a file says about the dataset it belongs to (each field may be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    pub scenario: Option<String>,
    /// CMIP6 `source_id`; CORDEX `<driving model>/<regional model>`.
    pub model: Option<String>,
    /// CMIP6 `variant_label`; CORDEX the driving model's member.
    pub member: Option<String>,
    /// CMIP6 `grid_label`; CORDEX `domain_id`.
    pub grid: Option<String>,
    pub convention: Convention,
}

fn first_of(globals: &BTreeMap<String, String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| globals.get(*n))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The identity fields of an ESGF CMIP6 file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsgfName {
    pub variable: String,
    pub table: String,
    pub source: String,
    pub experiment: String,
    pub member: String,
    pub grid: String,
}

/// Parses `<var>_<table>_<source>_<experiment>_<member>_<grid>[_<start>-<end>].nc`.
pub fn parse_esgf_name(file_name: &str) -> Option<EsgfName> {
    let stem = file_name.strip_suffix(".nc")?;
    let fields: Vec<&str> = stem.split('_').collect();
    let fields = match fields.len() {
        6 => &fields[..],
        7 if fields[6]
            .split('-')
            .all(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())) =>
        {
            &fields[..6]
        }
        _ => return None,
    };
    if fields.iter().any(|f| f.is_empty()) {
        return None;
    }
    // A member looks like r1i1p1f1 (CMIP6) or r1i1p1 (CMIP5).
    let member = fields[4];
    if !member.starts_with('r') || !member.contains('i') || !member.contains('p') {
        return None;
    }
    Some(EsgfName {
        variable: fields[0].into(),
        table: fields[1].into(),
        source: fields[2].into(),
        experiment: fields[3].into(),
        member: member.into(),
        grid: fields[5].into(),
    })
}

/// Reads a file's identity from its global attributes, falling back to its file name field by
/// field.
pub fn identify(globals: &BTreeMap<String, String>, file_name: &str) -> FileIdentity {
    let g = |names: &[&str]| first_of(globals, names);
    let cordex = g(&[
        "domain_id",
        "CORDEX_domain",
        "driving_model_id",
        "driving_source_id",
    ])
    .is_some()
        || g(&["project_id", "project", "mip_era"]).is_some_and(|p| p.contains("CORDEX"));
    let mut id = if cordex {
        let driving = g(&["driving_source_id", "driving_model_id"]);
        let rcm = g(&["source_id", "model_id"]);
        let model = match (driving, rcm) {
            (Some(d), Some(r)) => Some(format!("{d}/{r}")),
            (Some(d), None) => Some(format!("{d}/{UNKNOWN}")),
            (None, Some(r)) => Some(format!("{UNKNOWN}/{r}")),
            (None, None) => None,
        };
        FileIdentity {
            scenario: g(&["driving_experiment_id", "experiment_id"]),
            model,
            member: g(&["driving_variant_label", "driving_model_ensemble_member"]),
            grid: g(&["domain_id", "CORDEX_domain"]),
            convention: Convention::Cordex,
        }
    } else {
        FileIdentity {
            scenario: g(&["experiment_id"]),
            model: g(&["source_id"]),
            member: g(&["variant_label"]),
            grid: g(&["grid_label"]),
            convention: Convention::Cmip6,
        }
    };
    if id.model.is_none() && id.member.is_none() {
        id.convention = Convention::None;
    }
    if !cordex && let Some(name) = parse_esgf_name(file_name) {
        let filled = id.model.is_none() || id.member.is_none() || id.grid.is_none();
        id.scenario.get_or_insert(name.experiment);
        id.model.get_or_insert(name.source);
        id.member.get_or_insert(name.member);
        id.grid.get_or_insert(name.grid);
        if filled && id.convention == Convention::None {
            id.convention = Convention::FileName;
        }
    }
    id
}

/// An operator's `--scenario` / `--model` / `--member`: `NAME` names inputs that lack the field
/// and selects those that have it equal to NAME; `OLD=NEW` relabels inputs whose field is OLD.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum Label {
    Name(String),
    Relabel { from: String, to: String },
}

impl FromStr for Label {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let ok = |t: &str| !t.is_empty() && !t.contains(['=', ',']) && t.trim() == t;
        match s.split_once('=') {
            Some((from, to)) if ok(from) && ok(to) => Ok(Label::Relabel {
                from: from.into(),
                to: to.into(),
            }),
            None if ok(s) => Ok(Label::Name(s.into())),
            _ => Err(format!(
                "{s:?}: write NAME (names inputs without the attribute, selects those with it) \
                 or OLD=NEW (relabels inputs whose attribute is OLD)"
            )),
        }
    }
}

/// As written on the command line (`NAME` or `OLD=NEW`).
impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Name(n) => f.write_str(n),
            Label::Relabel { from, to } => write!(f, "{from}={to}"),
        }
    }
}

/// What a label did to one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelOutcome {
    Kept,
    /// The file lacked the field: now named.
    Named,
    /// The file's value was replaced: (old value).
    Relabelled(String),
    /// `NAME` given and the file says otherwise: out of scope.
    Excluded(String),
}

/// Applies `label` to one field of a file.
pub fn apply_label(field: &mut Option<String>, label: Option<&Label>) -> LabelOutcome {
    match (label, field.as_deref()) {
        (None, _) => LabelOutcome::Kept,
        (Some(Label::Name(n)), None) => {
            *field = Some(n.clone());
            LabelOutcome::Named
        }
        (Some(Label::Name(n)), Some(v)) if v == n => LabelOutcome::Kept,
        (Some(Label::Name(_)), Some(v)) => LabelOutcome::Excluded(v.to_owned()),
        (Some(Label::Relabel { from, to }), Some(v)) if v == from => {
            let old = v.to_owned();
            *field = Some(to.clone());
            LabelOutcome::Relabelled(old)
        }
        (Some(Label::Relabel { .. }), _) => LabelOutcome::Kept,
    }
}

/// A dataset's identity: what every result row belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DatasetKey {
    pub scenario: String,
    pub model: String,
    pub member: String,
    /// grid_label or domain; empty when the files say nothing.
    pub grid: String,
}

impl fmt::Display for DatasetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.scenario, self.model, self.member)?;
        if !self.grid.is_empty() {
            write!(f, " {}", self.grid)?;
        }
        Ok(())
    }
}

impl FileIdentity {
    /// The dataset key, once the scenario is known; model and member default to [`UNKNOWN`].
    pub fn key(&self) -> Option<DatasetKey> {
        Some(DatasetKey {
            scenario: self.scenario.clone()?,
            model: self.model.clone().unwrap_or_else(|| UNKNOWN.into()),
            member: self.member.clone().unwrap_or_else(|| UNKNOWN.into()),
            grid: self.grid.clone().unwrap_or_default(),
        })
    }
}

/// Groups items by key, keeping the first appearance order of keys and of items.
pub fn group_by_key<T>(items: Vec<(DatasetKey, T)>) -> Vec<(DatasetKey, Vec<T>)> {
    let mut groups: Vec<(DatasetKey, Vec<T>)> = Vec::new();
    for (key, item) in items {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(item),
            None => groups.push((key, vec![item])),
        }
    }
    groups
}

/// One file's share of one variable: its days, as calendar day numbers (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Index of the file in the caller's list.
    pub file: usize,
    pub first_day: i64,
    pub last_day: i64,
}

/// Days two pieces both cover (`first..=last`), to be checked for identical values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    pub earlier: usize,
    pub later: usize,
    pub first_day: i64,
    pub last_day: i64,
}

/// Sorts `pieces` into time order (by first day, then last) and lists every overlap.
pub fn join_pieces(pieces: &mut [Piece]) -> Vec<Overlap> {
    pieces.sort_by_key(|p| (p.first_day, p.last_day, p.file));
    let mut out = Vec::new();
    for (i, a) in pieces.iter().enumerate() {
        for b in &pieces[i + 1..] {
            if b.first_day > a.last_day {
                break;
            }
            out.push(Overlap {
                earlier: a.file,
                later: b.file,
                first_day: b.first_day,
                last_day: a.last_day.min(b.last_day),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cmip6_attributes() {
        let id = identify(
            &attrs(&[
                ("source_id", "MIROC6"),
                ("experiment_id", "ssp585"),
                ("variant_label", "r2i1p1f1"),
                ("grid_label", "gn"),
            ]),
            "x.nc",
        );
        assert_eq!(id.convention, Convention::Cmip6);
        let key = id.key().unwrap();
        assert_eq!(
            (
                key.scenario.as_str(),
                key.model.as_str(),
                key.member.as_str(),
                key.grid.as_str()
            ),
            ("ssp585", "MIROC6", "r2i1p1f1", "gn")
        );
    }

    #[test]
    fn cordex_cmip5_and_cmip6_conventions() {
        let cmip5 = identify(
            &attrs(&[
                ("project_id", "CORDEX"),
                ("CORDEX_domain", "EUR-11"),
                ("driving_model_id", "MPI-M-MPI-ESM-LR"),
                ("driving_model_ensemble_member", "r1i1p1"),
                ("model_id", "CLMcom-CCLM4-8-17"),
                ("experiment_id", "rcp85"),
            ]),
            "tasmax_EUR-11_x.nc",
        );
        assert_eq!(cmip5.convention, Convention::Cordex);
        let k = cmip5.key().unwrap();
        assert_eq!(k.model, "MPI-M-MPI-ESM-LR/CLMcom-CCLM4-8-17");
        assert_eq!((k.member.as_str(), k.grid.as_str()), ("r1i1p1", "EUR-11"));
        assert_eq!(k.scenario, "rcp85");
        let cmip6 = identify(
            &attrs(&[
                ("domain_id", "EUR-12"),
                ("driving_source_id", "EC-Earth3-Veg"),
                ("driving_variant_label", "r1i1p1f1"),
                ("driving_experiment_id", "ssp370"),
                ("source_id", "REMO2020"),
            ]),
            "x.nc",
        );
        let k = cmip6.key().unwrap();
        assert_eq!(k.model, "EC-Earth3-Veg/REMO2020");
        assert_eq!(
            (k.scenario.as_str(), k.member.as_str()),
            ("ssp370", "r1i1p1f1")
        );
    }

    #[test]
    fn esgf_file_name_fills_missing_fields() {
        let n = parse_esgf_name("tasmax_day_ACCESS-CM2_ssp245_r1i1p1f1_gn_20150101-20241231.nc")
            .unwrap();
        assert_eq!(
            (n.variable.as_str(), n.source.as_str(), n.grid.as_str()),
            ("tasmax", "ACCESS-CM2", "gn")
        );
        assert!(parse_esgf_name("ssp245.nc").is_none());
        assert!(parse_esgf_name("a_b_c_d_e_f_g_h.nc").is_none());
        let id = identify(
            &BTreeMap::new(),
            "pr_day_MIROC6_ssp585_r3i1p1f1_gn_20150101-20191231.nc",
        );
        assert_eq!(id.convention, Convention::FileName);
        assert_eq!(id.key().unwrap().member, "r3i1p1f1");
        // An attribute wins over the file name.
        let id = identify(
            &attrs(&[("experiment_id", "ssp126")]),
            "pr_day_MIROC6_ssp585_r3i1p1f1_gn.nc",
        );
        assert_eq!(id.key().unwrap().scenario, "ssp126");
        // Nothing at all: only the scenario is missing a default.
        assert!(identify(&BTreeMap::new(), "data.nc").key().is_none());
        let k = identify(&attrs(&[("experiment_id", "ssp126")]), "data.nc")
            .key()
            .unwrap();
        assert_eq!((k.model.as_str(), k.member.as_str()), (UNKNOWN, UNKNOWN));
    }

    #[test]
    fn labels_name_select_and_relabel() {
        let name: Label = "ssp245".parse().unwrap();
        let re: Label = "ssp245=ssp245-fixed".parse().unwrap();
        assert!("a=".parse::<Label>().is_err());
        assert!("a,b".parse::<Label>().is_err());
        let mut none = None;
        assert_eq!(apply_label(&mut none, Some(&name)), LabelOutcome::Named);
        assert_eq!(none.as_deref(), Some("ssp245"));
        let mut other = Some("ssp585".to_string());
        assert_eq!(
            apply_label(&mut other, Some(&name)),
            LabelOutcome::Excluded("ssp585".into())
        );
        let mut same = Some("ssp245".to_string());
        assert_eq!(
            apply_label(&mut same, Some(&re)),
            LabelOutcome::Relabelled("ssp245".into())
        );
        assert_eq!(same.as_deref(), Some("ssp245-fixed"));
        assert_eq!(apply_label(&mut other, Some(&re)), LabelOutcome::Kept);
    }

    #[test]
    fn pieces_join_in_time_order_with_overlaps() {
        let mut p = vec![
            Piece {
                file: 0,
                first_day: 100,
                last_day: 199,
            },
            Piece {
                file: 1,
                first_day: 0,
                last_day: 102,
            },
            Piece {
                file: 2,
                first_day: 200,
                last_day: 299,
            },
        ];
        let o = join_pieces(&mut p);
        assert_eq!(p.iter().map(|x| x.file).collect::<Vec<_>>(), [1, 0, 2]);
        assert_eq!(
            o,
            [Overlap {
                earlier: 1,
                later: 0,
                first_day: 100,
                last_day: 102
            }]
        );
    }
}
