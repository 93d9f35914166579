-- Do derivatives get smaller? Per derivation edge whose two ends have a parameter count or
-- a size in bytes: the ratio derivative / base, grouped {by:String} = relation |
-- architecture | base | root (the family root): edges, median parameter ratio, median
-- byte ratio, and the share of derivatives smaller in bytes than their base.
WITH
    sized AS (
        SELECT repo_id, parameters, size_bytes,
               if(empty(architectures), model_type, architectures[1]) AS architecture
        FROM models FINAL
        WHERE parameters IS NOT NULL OR size_bytes IS NOT NULL
    ),
    pairs AS (
        SELECT e.derivative_id AS derivative_id, e.base_model_id AS base_model_id,
               e.relation AS relation, b.architecture AS architecture,
               c.parameters / b.parameters AS parameter_ratio,
               c.size_bytes / b.size_bytes AS byte_ratio
        FROM lineage_edges AS e FINAL
        INNER JOIN sized AS c ON c.repo_id = e.derivative_id
        INNER JOIN sized AS b ON b.repo_id = e.base_model_id
    )
SELECT
    multiIf({by:String} = 'relation', p.relation,
            {by:String} = 'architecture', p.architecture,
            {by:String} = 'base', p.base_model_id,
            f.root_id) AS group,
    count() AS edges,
    round(median(p.parameter_ratio), 3) AS median_parameter_ratio,
    round(median(p.byte_ratio), 3) AS median_byte_ratio,
    round(avg(p.byte_ratio < 1), 3) AS share_smaller
FROM pairs AS p
LEFT JOIN (
    SELECT model_id, root_id FROM model_families FINAL
    WHERE {by:String} = 'root' AND model_id IN (SELECT derivative_id FROM pairs)
) AS f ON f.model_id = p.derivative_id
WHERE throwIf({by:String} NOT IN ('relation', 'architecture', 'base', 'root'),
              'by must be relation, architecture, base or root') = 0
GROUP BY group
ORDER BY edges DESC, group
