-- How fast do families grow after a base is released? For each root model (a model with
-- no base) that has descendants: descendants created within 7, 30 and 90 days (elapsed
-- time) of the root, all descendants, and the tree's depth.
WITH RECURSIVE
    tree AS (
        SELECT repo_id AS root, repo_id AS id, 0 AS depth
        FROM models FINAL
        WHERE repo_id NOT IN (SELECT derivative_id FROM lineage_edges FINAL)
        UNION ALL
        SELECT tree.root, e.derivative_id, tree.depth + 1
        FROM lineage_edges AS e FINAL
        INNER JOIN tree ON e.base_model_id = tree.id
        WHERE tree.depth < 50
    ),
    created AS (SELECT repo_id, created_at FROM models FINAL)
SELECT
    t.root AS root,
    countIf(t.depth > 0 AND c.created_at <= r.created_at + INTERVAL 7 DAY) AS within_7_days,
    countIf(t.depth > 0 AND c.created_at <= r.created_at + INTERVAL 30 DAY) AS within_30_days,
    countIf(t.depth > 0 AND c.created_at <= r.created_at + INTERVAL 90 DAY) AS within_90_days,
    countIf(t.depth > 0) AS descendants,
    max(t.depth) AS depth
FROM tree AS t
LEFT JOIN created AS r ON r.repo_id = t.root
LEFT JOIN created AS c ON c.repo_id = t.id
GROUP BY root
HAVING descendants > 0
ORDER BY descendants DESC, root
