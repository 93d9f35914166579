-- How fast do families grow after a base is released? For each family root with
-- descendants: descendants created within 7, 30 and 90 days of the root, all descendants
-- and how many of them are finetunes, quantizations, adapters and merges, and the tree's
-- depth.
SELECT
    f.root_id AS root,
    countIf(f.depth > 0 AND f.created_at <= r.created_at + INTERVAL 7 DAY) AS within_7_days,
    countIf(f.depth > 0 AND f.created_at <= r.created_at + INTERVAL 30 DAY) AS within_30_days,
    countIf(f.depth > 0 AND f.created_at <= r.created_at + INTERVAL 90 DAY) AS within_90_days,
    any(r.descendants) AS descendants,
    any(r.finetunes) AS finetunes,
    any(r.quantized) AS quantized,
    any(r.adapters) AS adapters,
    any(r.merges) AS merges,
    max(f.depth) AS depth
FROM model_families AS f FINAL
INNER JOIN (
    SELECT model_id, created_at, descendants, finetunes, quantized, adapters, merges
    FROM model_families FINAL
    WHERE depth = 0 AND descendants > 0
) AS r ON r.model_id = f.root_id
GROUP BY root
ORDER BY descendants DESC, root
