//! The database schema every binary carries: the harness's tables first,
//! then the domain tables, in version order. `jobctl migrate` applies it.
//! Add a migration by appending a file under `migrations/` and a line here.

use crate::harness::migrate::{self, Migration};

pub const MIGRATIONS: &[Migration] = &[
    migrate::HARNESS,
    (
        2,
        "hazard",
        include_str!("../../migrations/0002_hazard.sql"),
    ),
    (3, "cache", include_str!("../../migrations/0003_cache.sql")),
    (
        4,
        "datasets",
        include_str!("../../migrations/0004_datasets.sql"),
    ),
    (
        5,
        "notify",
        include_str!("../../migrations/0005_notify.sql"),
    ),
    (6, "sites", include_str!("../../migrations/0006_sites.sql")),
    (
        7,
        "series",
        include_str!("../../migrations/0007_series.sql"),
    ),
    (
        8,
        "probability_series",
        include_str!("../../migrations/0008_probability_series.sql"),
    ),
    (
        9,
        "cache_series",
        include_str!("../../migrations/0009_cache_series.sql"),
    ),
    (
        10,
        "site_results_layout",
        include_str!("../../migrations/0010_site_results_layout.sql"),
    ),
    (
        11,
        "probability_series_view",
        include_str!("../../migrations/0011_probability_series_view.sql"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_and_every_file_is_listed() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let files = std::fs::read_dir(&dir)
            .map(|d| d.flatten().count())
            .unwrap_or(0);
        assert_eq!(
            files,
            MIGRATIONS.len(),
            "migrations/ vs store::schema::MIGRATIONS"
        );
    }
}
