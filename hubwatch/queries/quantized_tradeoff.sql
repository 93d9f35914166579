-- Size reduction against accuracy loss for quantized models, per board: the same model
-- scored at a quantized precision (4bit, 8bit, GPTQ) against its own full-precision score
-- (pairing same_model), and a Hub quantization of a base (derivation_pairs relation
-- quantized) against the base's full-precision score (pairing quantized_repo). The size
-- ratio is measured where the Hub knows both weights (size_source hub: size_bytes of the
-- two repos); else it is the assumption bits / 16 (size_source assumed_bits/16: the repo's
-- own bits where known, else 8bit 0.5, 4bit and GPTQ 0.25).
-- Columns: board, precision, pairing, size_source, models, size_ratio (median),
-- median_delta, worst_delta, share_within_1_point (|delta| <= 1: within one point either
-- way). Full precision is float16, bfloat16 or float32 (as score_delta and the report).
-- No rows: hubwatch query says why.
-- As of the last refresh of its summary (every 60 s; `hubwatch query --fresh` recomputes
-- now): the answer is computed once per refresh in migration 0045, this reads it.
-- summary: quantized_tradeoff_refresh
SELECT board, precision, pairing, size_source, models, size_ratio, median_delta, worst_delta,
       share_within_1_point
FROM quantized_tradeoff_summary
ORDER BY board, precision, pairing, size_source
