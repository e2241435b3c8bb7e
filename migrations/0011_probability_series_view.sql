-- probability_series: the readers' view of probability results one series
-- at a time, next to probability_values (one row per year). A reader that
-- wants every year of many grid points (site-risk-batch reads 80 years x
-- 4 datasets x 5 hazards per grid point) reads 80 times fewer rows here than
-- through probability_values, and the server does not unnest and slice the
-- arrays per year (bench/results/README.md, site-risk-batch).
--
-- Like probability_values it is the stable reading contract: whatever
-- probability_results stores (layout, types, compression), these columns
-- keep their names, types and meaning.

CREATE VIEW probability_series AS
SELECT g.lat, g.lon, p.grid_id, d.scenario, d.model, d.member, p.dataset_id, p.risk_type,
       p.first_year::integer AS first_year,
       cardinality(p.method_by_year) AS year_count,
       p.bin_edges,
       p.bin_count::integer AS bin_count,
       p.method_by_year,
       p.sample_size_by_year::integer[] AS sample_size_by_year,
       p.bin_probs_by_year,
       p.return_level_10_by_year, p.return_level_50_by_year, p.return_level_100_by_year,
       p.gev_c_by_year, p.gev_loc_by_year, p.gev_scale_by_year
  FROM probability_results p
  JOIN grid_points g ON g.id = p.grid_id
  JOIN datasets d ON d.id = p.dataset_id;

COMMENT ON VIEW probability_series IS
    'One row per grid point, dataset and hazard, with every year''s probability result as arrays: '
    'lat, lon, grid_id, scenario, model, member, dataset_id, risk_type, first_year, year_count, '
    'bin_edges (the same for every year), bin_count, and the per-year arrays method_by_year, '
    'sample_size_by_year, bin_probs_by_year, return_level_10/50/100_by_year, '
    'gev_c/gev_loc/gev_scale_by_year. Element i (1-based) of every *_by_year array except '
    'bin_probs_by_year is the year first_year + i - 1; year_count elements each. A year without '
    'a result (too few values in its window) has NULL in every array; gev_* are NULL for years not '
    'fitted with a GEV. bin_probs_by_year is the years'' bin probabilities one after the other, '
    'bin_count per year (year i is elements (i-1)*bin_count+1 .. i*bin_count), year_count * '
    'bin_count elements. Method, GEV convention and units as in probability_values; the years '
    'with a result are exactly probability_values'' rows. The stable reading contract.';
