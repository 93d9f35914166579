-- derivation_pairs at canonical ids: both ends mapped through model_aliases (one hop deep,
-- as the table keeps them), so a pair named under two names of one repo (an old name, another
-- casing) counts once and every query on the view (size_change, quantized_tradeoff, ...) joins
-- it to the repo's scores and sizes. A pair that maps onto itself is no pair.
CREATE OR REPLACE VIEW derivation_pairs
(
    derivative_id  String COMMENT 'the model that derives (canonical id)',
    base_model_id  String COMMENT 'the model it derives from (canonical id)',
    relation       String COMMENT 'the Hub''s relation where the Hub names the pair, else the board''s',
    source         String COMMENT 'who names the pair: hub, board or hub+board',
    hub_relation   String COMMENT 'what lineage_edges says; empty if the Hub does not name the pair',
    board_relation String COMMENT 'what leaderboard_edges says; empty if no board names the pair',
    disputed       Bool COMMENT 'the Hub and a board name the pair with different relations'
)
AS WITH
    (SELECT (groupArray(alias_id), groupArray(canonical_id)) FROM model_aliases FINAL) AS aliases
SELECT
    d AS derivative_id,
    b AS base_model_id,
    if(has_hub, hub_relation, board_relation) AS relation,
    multiIf(has_hub AND has_board, 'hub+board', has_hub, 'hub', 'board') AS source,
    hub_relation,
    board_relation,
    has_hub AND has_board AND hub_relation != board_relation AS disputed
FROM (
    SELECT
        transform(derivative_id, aliases.1, aliases.2, derivative_id) AS d,
        transform(base_model_id, aliases.1, aliases.2, base_model_id) AS b,
        max(from_hub) AS has_hub,
        max(NOT from_hub) AS has_board,
        anyIf(relation, from_hub) AS hub_relation,
        anyIf(relation, NOT from_hub) AS board_relation
    FROM (
        SELECT derivative_id, base_model_id, toString(relation) AS relation, true AS from_hub
        FROM lineage_edges FINAL
        UNION ALL
        SELECT derivative_id, base_model_id, toString(relation), false
        FROM leaderboard_edges FINAL
    )
    GROUP BY d, b
    HAVING d != b
);
