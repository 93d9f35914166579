-- Which benchmarks improve? Per board and benchmark, over every derivation pair
-- (derivation_pairs) with scores on both ends on the same board and benchmark, each model
-- at the precision of its best full-precision average (else its best): edges, median delta, share that
-- improve. Columns: board, benchmark, edges, median_delta, share_improved.
-- No rows: hubwatch query says why.
-- As of the last refresh of its summary (every 60 s; `hubwatch query --fresh` recomputes
-- now): the answer is computed once per refresh in migration 0045, this reads it.
-- summary: benchmark_delta_refresh
SELECT board, benchmark, edges, median_delta, share_improved
FROM benchmark_delta_summary
ORDER BY board, benchmark
