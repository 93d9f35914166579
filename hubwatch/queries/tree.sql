-- The whole family tree of {model:String}: up to its root, then every descendant of that
-- root, with depth, relation to the parent, and when each model was created.
WITH RECURSIVE
    up AS (
        SELECT {model:String} AS id, 0 AS steps
        UNION ALL
        SELECT e.base_model_id, up.steps + 1
        FROM lineage_edges AS e FINAL
        INNER JOIN up ON e.derivative_id = up.id
        WHERE up.steps < 50
    ),
    root AS (SELECT argMax(id, steps) AS id FROM up),
    down AS (
        SELECT (SELECT id FROM root) AS id, '' AS parent, '' AS relation, 0 AS depth
        UNION ALL
        SELECT e.derivative_id, e.base_model_id, e.relation, down.depth + 1
        FROM lineage_edges AS e FINAL
        INNER JOIN down ON e.base_model_id = down.id
        WHERE down.depth < 50
    )
SELECT d.id AS model, d.parent AS parent, d.relation AS relation, d.depth AS depth,
       m.created_at AS created_at
FROM down AS d
LEFT JOIN (SELECT repo_id, created_at FROM models FINAL) AS m ON m.repo_id = d.id
ORDER BY depth, model
