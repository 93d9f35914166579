-- The relation of a board's edge is the derivative's own (merged flag, weight type, type);
-- a " (Merge)" suffix on the board's base name no longer makes it a merge.
ALTER TABLE leaderboard_edges MODIFY COLUMN relation COMMENT 'the derivative''s own relation: merge (merged flag or merge type), adapter (weight type), else finetune';

-- Every derivation pair once, whoever names it: the Hub's lineage (lineage_edges) and the
-- boards' base fields (leaderboard_edges). A pair both name counts once with the Hub's
-- relation; what the board said stays in board_relation, and disputed flags a difference.
-- source: hub, board or hub+board. Score comparisons read pairs from here, so a board with
-- no base column of its own (v1) is compared along the Hub's lineage.
CREATE VIEW IF NOT EXISTS derivation_pairs
(
    derivative_id  String COMMENT 'the model that derives',
    base_model_id  String COMMENT 'the model it derives from',
    relation       String COMMENT 'the Hub''s relation where the Hub names the pair, else the board''s',
    source         String COMMENT 'who names the pair: hub, board or hub+board',
    hub_relation   String COMMENT 'what lineage_edges says; empty if the Hub does not name the pair',
    board_relation String COMMENT 'what leaderboard_edges says; empty if no board names the pair',
    disputed       Bool COMMENT 'the Hub and a board name the pair with different relations'
)
AS SELECT
    derivative_id,
    base_model_id,
    if(has_hub, hub_relation, board_relation) AS relation,
    multiIf(has_hub AND has_board, 'hub+board', has_hub, 'hub', 'board') AS source,
    hub_relation,
    board_relation,
    has_hub AND has_board AND hub_relation != board_relation AS disputed
FROM (
    SELECT
        derivative_id,
        base_model_id,
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
    GROUP BY derivative_id, base_model_id
);
