-- How fast do families grow after a base is released? For the 1,000 largest families:
-- the root, descendants created within 7, 30 and 90 days of it, all descendants and how
-- many of them are finetunes, quantizations, adapters and merges, and the tree's depth.
SELECT root, within_7_days, within_30_days, within_90_days, descendants, finetunes,
       quantized, adapters, merges, tree_depth AS depth
FROM (
    SELECT
        root_id AS root,
        anyIf(created_at, depth = 0) AS root_created,
        groupArrayIf(created_at, depth > 0) AS born,
        arrayCount(c -> c <= root_created + INTERVAL 7 DAY, born) AS within_7_days,
        arrayCount(c -> c <= root_created + INTERVAL 30 DAY, born) AS within_30_days,
        arrayCount(c -> c <= root_created + INTERVAL 90 DAY, born) AS within_90_days,
        anyIf(descendants, depth = 0) AS descendants,
        anyIf(finetunes, depth = 0) AS finetunes,
        anyIf(quantized, depth = 0) AS quantized,
        anyIf(adapters, depth = 0) AS adapters,
        anyIf(merges, depth = 0) AS merges,
        max(depth) AS tree_depth
    FROM model_families FINAL
    -- Only the trees of the 1,000 largest families are read whole (the sort key starts
    -- with root_id); which they are, their roots' rows say.
    WHERE root_id IN (
        SELECT root_id FROM model_families FINAL
        WHERE depth = 0 AND descendants > 0
        ORDER BY descendants DESC, root_id
        LIMIT 1000
    )
    GROUP BY root
    HAVING descendants > 0
    ORDER BY descendants DESC, root
    LIMIT 1000
)
ORDER BY descendants DESC, root
