-- The whole family tree of {model:String}: every model in the family it belongs to, from
-- the root down, with depth, primary base (parent), relation to it, creation time, and
-- how many descendants each has. Merges sit under their first base.
-- param model: a model id as the Hub lists it, e.g. mistralai/Mistral-7B-v0.1
WITH (
    SELECT any(root_id) FROM model_families FINAL WHERE model_id = {model:String}
) AS family_root
SELECT model_id AS model, parent_id AS parent, relation, depth, created_at, descendants
FROM model_families FINAL
WHERE root_id = family_root
ORDER BY depth, model
