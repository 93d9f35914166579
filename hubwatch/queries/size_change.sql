-- Do derivatives get smaller? Per derivative and its primary base where both have a
-- parameter count or a size in bytes: the ratio derivative / base, grouped {by:String} =
-- relation | architecture | base | root (the family root), the 1,000 largest groups:
-- edges, median parameter ratio, median byte ratio, the share of derivatives smaller in
-- bytes than their base.
SELECT
    multiIf({by:String} = 'relation', relation,
            {by:String} = 'architecture', architecture,
            {by:String} = 'base', parent_id,
            root_id) AS group,
    count() AS edges,
    round(median(parameters / base_parameters), 3) AS median_parameter_ratio,
    round(median(size_bytes / base_size_bytes), 3) AS median_byte_ratio,
    round(avg(size_bytes < base_size_bytes), 3) AS share_smaller
FROM model_families FINAL
WHERE parent_id != ''
    AND (base_parameters > 0 AND parameters IS NOT NULL
         OR base_size_bytes > 0 AND size_bytes IS NOT NULL)
    AND throwIf({by:String} NOT IN ('relation', 'architecture', 'base', 'root'),
                'by must be relation, architecture, base or root') = 0
GROUP BY group
ORDER BY edges DESC, group
LIMIT 1000
