-- How fast do families grow after a base is released? For the 1,000 largest families:
-- the root, descendants created within 7, 30 and 90 days of it, all descendants and how
-- many of them are finetunes, quantizations, adapters and merges, and the tree's depth.
-- As of the last refresh of its summary (every 60 s; `hubwatch query --fresh` recomputes
-- now): the answer is computed once per refresh in migration 0045, this reads it.
-- summary: family_growth_refresh
SELECT root, within_7_days, within_30_days, within_90_days, descendants, finetunes,
       quantized, adapters, merges, depth
FROM family_growth_summary
ORDER BY descendants DESC, root
