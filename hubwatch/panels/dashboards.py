"""The six dashboards and their panels, each defined once.

ClickHouse queries are written for the Grafana ClickHouse plugin (its macros, Grafana
variables in ``${name:sqlstring}`` form so a value is always a quoted SQL string) and read
the tables as they are kept: ``FINAL`` where a row can be replaced, the sorting keys
where a filter can use them (``models`` by id, ``model_families`` by root, ``engagement_hourly``
and ``community_events`` by time). PromQL uses the metric names of ``hubwatch/metrics.py``.
"""

from __future__ import annotations

from datetime import timedelta

from hubwatch.panels.model import Dashboard, Panel, Variable
from hubwatch.queries import load

__all__ = ["DASHBOARDS", "dashboard", "panel", "panels"]


def _canned(name: str, **bound: str) -> str:
    """A canned query (hubwatch/queries) with its parameters written in, for a panel: the
    data source sends SQL as it is, so ``{name:Type}`` placeholders cannot stay."""
    sql = load(name).sql
    # The lines for `hubwatch query` (defaults, what a parameter means) are not the panel's.
    body = "\n".join(
        line for line in sql.splitlines() if not line.startswith(("-- defaults:", "-- param "))
    )
    for key, value in bound.items():
        body = body.replace(f"{{{key}:UInt32}}", value)
    return body


# The Ecosystem lineage panels read ecosystem_hours (migration 0050: models created per hour
# by relation, base and root, before its as_of) for the models created from counted_from
# to counted_to: from the range's first whole hour (UTC) to as_of, or to the start of the
# range's last hour when the range ends before as_of. The rest of the range (its partial
# first and last hours, and the live tail from as_of on) they read from models joined to
# model_lineage, as before: a few hours' models at most, found through the models
# projection by created_at (migration 0048). A model is counted by exactly one side.
def _counted(*, whole_hours: bool = False) -> str:
    """The WITH clause naming edge (the summary's as_of: every row has the same, so one
    granule says it; an empty summary counts nothing), counted_from and counted_to. With
    ``whole_hours`` (a time series), the summary counts nothing unless each
    $__timeInterval bucket is whole hours."""
    first = "toStartOfHour(toTimeZone($__fromTime, 'UTC'))"
    last = "toStartOfHour(toTimeZone($__toTime, 'UTC'))"
    to = f"if(edge <= $__toTime, edge, least(edge, {last}))"
    if whole_hours:
        to = f"if($__interval_s % 3600 = 0, {to}, counted_from)"
    return f"""WITH
    ifNull((SELECT as_of FROM ecosystem_hours LIMIT 1), toDateTime64(0, 3, 'UTC')) AS edge,
    if({first} = $__fromTime, {first}, {first} + INTERVAL 1 HOUR) AS counted_from,
    {to} AS counted_to"""


_COUNTED_HOURS = "hour >= counted_from AND hour < counted_to"


def _tail_models(columns: str = "repo_id") -> str:
    """The range's models ecosystem_hours does not count."""
    return (
        f"SELECT {columns} FROM models WHERE $__timeFilter(created_at)"
        " AND (created_at < counted_from OR created_at >= counted_to)"
    )


# --- 1. Ecosystem ---------------------------------------------------------------------------

ECOSYSTEM = Dashboard(
    uid="hubwatch-ecosystem",
    title="hubwatch / Ecosystem",
    description="What the open-source LLM ecosystem is uploading: new models by relation, "
    "the most derived bases and the fastest-growing families.",
    time_from="now-7d",
    panels=(
        Panel(
            id="new_models",
            dashboard="hubwatch-ecosystem",
            title="New models",
            description="Models created on the Hub in the range, counted once each.",
            visualisation="stat",
            datasource="clickhouse",
            query="SELECT uniqExact(repo_id) AS models\nFROM models\n"
            "WHERE $__timeFilter(created_at)",
            columns=("models",),
            y=("models",),
            width=6,
            height=4,
        ),
        Panel(
            id="new_models_by_relation",
            dashboard="hubwatch-ecosystem",
            title="New models by relation",
            description="Models created per interval, by their relation to their primary base "
            "(finetune, quantized, adapter, merge; base: a model that derives from none).",
            visualisation="timeseries",
            datasource="clickhouse",
            query=f"""{_counted(whole_hours=True)}
SELECT time, if(relation = '', 'base', toString(relation)) AS relation, sum(models) AS models
FROM (
    SELECT $__timeInterval(hour) AS time, relation, models
    FROM ecosystem_hours
    WHERE {_COUNTED_HOURS}
    UNION ALL
    SELECT $__timeInterval(m.created_at) AS time, l.relation AS relation,
           uniqExact(m.repo_id) AS models
    FROM ({_tail_models("repo_id, created_at")}) AS m
    LEFT JOIN (
        SELECT model_id, relation
        FROM model_lineage FINAL
        WHERE model_id IN ({_tail_models()}) AND is_deleted = 0
    ) AS l ON l.model_id = m.repo_id
    GROUP BY time, relation
)
GROUP BY time, relation
ORDER BY time, relation""",
            columns=("time", "relation", "models"),
            x="time",
            y=("models",),
            series="relation",
            width=18,
            # Per hour at least: the summary's buckets (migration 0050).
            min_interval=timedelta(hours=1),
        ),
        Panel(
            id="most_derived_bases",
            dashboard="hubwatch-ecosystem",
            title="Most derived bases",
            description="The bases with the most new direct derivatives in the range, by relation.",
            visualisation="table",
            datasource="clickhouse",
            query=f"""{_counted()}
SELECT parent_id AS base,
       sum(models) AS derivatives,
       sumIf(models, relation = 'finetune') AS finetunes,
       sumIf(models, relation = 'quantized') AS quantized,
       sumIf(models, relation = 'adapter') AS adapters,
       sumIf(models, relation = 'merge') AS merges
FROM (
    SELECT parent_id, relation, models
    FROM ecosystem_hours
    WHERE {_COUNTED_HOURS} AND parent_id != ''
    UNION ALL
    SELECT parent_id, relation, count() AS models
    FROM model_lineage FINAL
    WHERE model_id IN ({_tail_models()}) AND is_deleted = 0 AND parent_id != ''
    GROUP BY parent_id, relation
)
GROUP BY base
ORDER BY derivatives DESC, base
LIMIT 20""",
            columns=("base", "derivatives", "finetunes", "quantized", "adapters", "merges"),
            y=("derivatives",),
        ),
        Panel(
            id="fastest_growing_families",
            dashboard="hubwatch-ecosystem",
            title="Fastest-growing families",
            description="Families (by their root) that gained the most members in the range.",
            visualisation="barchart",
            datasource="clickhouse",
            query=f"""{_counted()}
SELECT root_id AS family, sum(models) AS new_members
FROM (
    SELECT root_id, models
    FROM ecosystem_hours
    WHERE {_COUNTED_HOURS} AND member = 1
    UNION ALL
    SELECT root_id, count() AS models
    FROM model_lineage FINAL
    WHERE model_id IN ({_tail_models()}) AND is_deleted = 0 AND model_id != root_id
    GROUP BY root_id
)
GROUP BY family
ORDER BY new_members DESC, family
LIMIT 15""",
            columns=("family", "new_members"),
            x="family",
            y=("new_members",),
        ),
    ),
)

# --- 2. Family explorer -----------------------------------------------------------------------

_BASE = "${base_model:sqlstring}"
_FAMILY_ROOT = (
    f"(SELECT any(root_id) FROM model_lineage FINAL WHERE model_id = {_BASE} AND is_deleted = 0)"
)
# The picked model's own subtree: itself and what derives from it, at any depth (a pick
# below the root shows its branch, not the whole family). Applied once per panel, to its
# final rows: the recursion costs a few ms a step, and a CTE is inlined at each use. The
# step bound is a guard only: the families are a forest, and no tree is that deep.
_SUBTREE = f"""(
    WITH RECURSIVE subtree AS (
        SELECT {_BASE} AS model_id, 0 AS steps
        UNION ALL
        SELECT f.model_id, s.steps + 1
        FROM model_families AS f FINAL
        INNER JOIN subtree AS s ON f.parent_id = s.model_id
        WHERE f.root_id = {_FAMILY_ROOT} AND f.is_deleted = 0 AND s.steps < 100
    )
    SELECT model_id FROM subtree
)"""

FAMILY = Dashboard(
    uid="hubwatch-family",
    title="hubwatch / Family explorer",
    description="One base model's subtree (the model and what derives from it): its tree "
    "by relation over time, its top derivatives by engagement, and their size and accuracy "
    "against their base.",
    time_from="now-90d",
    variables=(
        Variable(
            name="base_model",
            label="Base model",
            query="SELECT model_id FROM model_families FINAL\n"
            "WHERE is_deleted = 0 AND children > 0\n"
            "ORDER BY descendants DESC, model_id\nLIMIT 500",
            description="A model with derivatives; it and what derives from it are shown.",
        ),
    ),
    panels=(
        Panel(
            id="family_tree_by_relation",
            dashboard="hubwatch-family",
            title="Family members by relation",
            description="Members of the base's family created per interval, by their relation "
            "to their own primary base.",
            visualisation="timeseries",
            datasource="clickhouse",
            query=f"""SELECT $__timeInterval(created_at) AS time,
       toString(relation) AS relation,
       count() AS models
FROM model_families FINAL
WHERE root_id = {_FAMILY_ROOT} AND model_id IN {_SUBTREE}
  AND is_deleted = 0 AND depth > 0 AND $__timeFilter(created_at)
GROUP BY time, relation
ORDER BY time, relation""",
            columns=("time", "relation", "models"),
            x="time",
            y=("models",),
            series="relation",
            variables=("base_model",),
            no_data="No model of this subtree was created in this range",
            width=24,
        ),
        Panel(
            id="family_top_derivatives",
            dashboard="hubwatch-family",
            title="Top derivatives by engagement",
            description="The picked model's derivatives (what derives from it, at any depth; "
            "not the model itself) that gained the most downloads in their last 24 hours (live "
            "windows), with their depth below the picked model (1: derived from it directly), "
            "likes and all-time downloads.",
            visualisation="table",
            datasource="clickhouse",
            # Not "depth > 0": that is the family root's subtree, wrong for any other pick.
            query=f"""WITH members AS (
    SELECT model_id, relation, depth
    FROM model_families FINAL
    WHERE root_id = {_FAMILY_ROOT} AND is_deleted = 0 AND model_id != {_BASE}
)
SELECT m.model_id AS model, toString(m.relation) AS relation,
       m.depth - (
           SELECT any(depth) FROM model_families FINAL
           WHERE root_id = {_FAMILY_ROOT} AND model_id = {_BASE} AND is_deleted = 0
       ) AS depth_below_base,
       e.downloads_24h AS downloads_24h, e.likes_24h AS likes_24h,
       e.downloads_all_time AS downloads, e.likes AS likes
FROM members AS m
INNER JOIN (
    SELECT repo_id, downloads_24h, likes_24h, downloads_all_time, likes
    FROM engagement_live FINAL
    WHERE repo_id IN (SELECT model_id FROM members)
) AS e ON e.repo_id = m.model_id
WHERE m.model_id IN {_SUBTREE}
ORDER BY downloads_24h DESC, likes_24h DESC, downloads DESC, model
LIMIT 20""",
            columns=(
                "model",
                "relation",
                "depth_below_base",
                "downloads_24h",
                "likes_24h",
                "downloads",
                "likes",
            ),
            y=("downloads_24h",),
            variables=("base_model",),
            no_data="No derivative of this model has been snapshotted yet",
        ),
        Panel(
            id="family_against_base",
            dashboard="hubwatch-family",
            title="Size and accuracy against the base",
            description="Each derivative against its primary base: parameter and byte ratios "
            "(Hub sizes) and the change of the leaderboard average (Open LLM v2, else v1; "
            "the same board for both ends).",
            visualisation="table",
            datasource="clickhouse",
            query=f"""WITH
    members AS (
        SELECT model_id, parent_id, relation, parameters, base_parameters,
               size_bytes, base_size_bytes
        FROM model_families FINAL
        WHERE root_id = {_FAMILY_ROOT} AND is_deleted = 0 AND parent_id != ''
    ),
    scores AS (
        SELECT board, model_id, max(score) AS score
        FROM leaderboard_scores FINAL
        WHERE benchmark = 'average'
          AND (model_id IN (SELECT model_id FROM members)
               OR model_id IN (SELECT parent_id FROM members))
        GROUP BY board, model_id
    ),
    deltas AS (
        SELECT c.model_id AS model_id,
               argMax(c.score - b.score, multiIf(c.board = 'open_llm_v2', 3,
                      c.board = 'open_llm_v1', 2, 1)) AS delta
        FROM scores AS c
        INNER JOIN members AS m ON m.model_id = c.model_id
        INNER JOIN scores AS b ON b.model_id = m.parent_id AND b.board = c.board
        GROUP BY c.model_id
    )
SELECT m.model_id AS model, m.parent_id AS base, toString(m.relation) AS relation,
       round(m.parameters / nullIf(m.base_parameters, 0), 3) AS parameter_ratio,
       round(m.size_bytes / nullIf(m.base_size_bytes, 0), 3) AS size_ratio,
       round(d.delta, 2) AS accuracy_change
FROM members AS m
LEFT JOIN (SELECT model_id, toNullable(delta) AS delta FROM deltas) AS d
    ON d.model_id = m.model_id
WHERE m.model_id IN {_SUBTREE}
ORDER BY accuracy_change IS NULL, parameter_ratio IS NULL, model
LIMIT 100""",
            columns=(
                "model",
                "base",
                "relation",
                "parameter_ratio",
                "size_ratio",
                "accuracy_change",
            ),
            variables=("base_model",),
            no_data="No derivatives of this model",
        ),
    ),
)

# --- 3. Architectures -------------------------------------------------------------------------

ARCHITECTURES = Dashboard(
    uid="hubwatch-architectures",
    title="hubwatch / Architectures",
    description="The seed study's central table, live: per architecture, how many "
    "derivatives, how their accuracy and size change against their base.",
    time_from="now-1y",
    panels=(
        Panel(
            id="architectures",
            dashboard="hubwatch-architectures",
            title="Derivatives per architecture",
            description="Derivatives created in the range (Hub family trees, whole UTC days), "
            "per architecture (config.architectures[1], else model_type): how many, how many "
            "have a leaderboard average on the same board as their base, the median change "
            "of that average, and the median parameter ratio derivative / base. As of the "
            "last refresh of its summary (every 60 s).",
            visualisation="table",
            datasource="clickhouse",
            # The days of the range from the summary (migration 0046): merging their median
            # (quantile) states is the median over the range's derivatives.
            query="""SELECT architecture,
       sum(derivatives) AS derivatives,
       sum(scored) AS scored,
       round(quantileMerge(0.5)(accuracy_change), 2) AS median_accuracy_change,
       round(quantileMerge(0.5)(size_change), 3) AS median_size_change
FROM architecture_days
WHERE $__dateFilter(day)
GROUP BY architecture
ORDER BY derivatives DESC, architecture
LIMIT 50""",
            columns=(
                "architecture",
                "derivatives",
                "scored",
                "median_accuracy_change",
                "median_size_change",
            ),
            no_data="No derivatives created in this range",
            width=24,
            height=12,
        ),
    ),
)

# --- 4. Engagement ----------------------------------------------------------------------------

ENGAGEMENT = Dashboard(
    uid="hubwatch-engagement",
    title="hubwatch / Engagement",
    description="Downloads and likes as they roll in, the derivatives breaking out, and "
    "community activity on the Hub and GitHub.",
    # A day by default: the gains merge each model's hourly states, so their cost grows
    # with the range (bench/bench_panels.py).
    time_from="now-24h",
    panels=(
        Panel(
            id="engagement_gained",
            dashboard="hubwatch-engagement",
            title="Downloads and likes gained",
            description="All-time downloads and likes gained per interval over every followed "
            "model: each model's last value in the interval minus its last value in the one "
            "before (the first value seen, for its first interval).",
            visualisation="timeseries",
            datasource="clickhouse",
            query="""SELECT time, sum(downloads) AS downloads, sum(likes) AS likes
FROM (
    SELECT time, repo_id,
           toInt64(last_downloads)
               - toInt64(lagInFrame(last_downloads, 1, first_downloads)
                         OVER (PARTITION BY repo_id ORDER BY time)) AS downloads,
           toInt64(last_likes)
               - toInt64(lagInFrame(last_likes, 1, first_likes)
                         OVER (PARTITION BY repo_id ORDER BY time)) AS likes
    FROM (
        SELECT $__timeInterval(hour) AS time, repo_id,
               argMinMerge(downloads_first) AS first_downloads,
               argMaxMerge(downloads_last) AS last_downloads,
               argMinMerge(likes_first) AS first_likes,
               argMaxMerge(likes_last) AS last_likes
        FROM engagement_hourly
        WHERE $__timeFilter(hour)
        GROUP BY time, repo_id
    )
)
GROUP BY time
ORDER BY time""",
            columns=("time", "downloads", "likes"),
            x="time",
            y=("downloads", "likes"),
            no_data="No snapshots of followed models in this range",
            width=24,
        ),
        Panel(
            id="top_movers",
            dashboard="hubwatch-engagement",
            title="Most downloaded in the last 24 hours",
            description="Models whose latest snapshot falls in the range, by downloads gained "
            "in the 24 hours before it (ties by all-time downloads); velocity per hour and "
            "its acceleration.",
            visualisation="table",
            datasource="clickhouse",
            query="""SELECT repo_id AS model, downloads_24h, likes_24h,
       round(velocity_per_hour, 1) AS velocity_per_hour,
       round(acceleration, 1) AS acceleration
FROM engagement_live FINAL
WHERE $__timeFilter(at)
ORDER BY downloads_24h DESC, downloads_all_time DESC, model
LIMIT 20""",
            columns=("model", "downloads_24h", "likes_24h", "velocity_per_hour", "acceleration"),
            y=("downloads_24h",),
            no_data="No model was snapshotted in this range",
        ),
        Panel(
            id="breakouts",
            dashboard="hubwatch-engagement",
            title="Breakouts",
            description=load("breakouts").description.split(" A score above 1")[0]
            + " As of the last refresh of its summary, every 60 s.",
            visualisation="table",
            datasource="clickhouse",
            query=_canned("breakouts", limit="20"),
            columns=(
                "model",
                "base",
                "relation",
                "root",
                "velocity_per_hour",
                "base_velocity_per_hour",
                "siblings_median_velocity",
                "derivatives_of_base",
                "breakout_score",
            ),
            y=("breakout_score",),
            no_data="No derivative outgrows its base now",
        ),
        Panel(
            id="community_activity",
            dashboard="hubwatch-engagement",
            title="Community activity",
            description="Hub commits and discussions, GitHub commits, issues and releases per "
            "interval (each item and status change once).",
            visualisation="timeseries",
            datasource="clickhouse",
            query="""SELECT $__timeInterval(at) AS time, toString(kind) AS kind,
       uniqExact(repo, item, transition) AS events
FROM community_events
WHERE $__timeFilter(at)
GROUP BY time, kind
ORDER BY time, kind""",
            columns=("time", "kind", "events"),
            x="time",
            y=("events",),
            series="kind",
            no_data="No commits, discussions, issues or releases in this range",
            width=24,
        ),
    ),
)

# --- 5. Alerts ------------------------------------------------------------------------------

_NO_ALERTS = "No alerts: none have fired, or no alert rules are configured"

ALERTS = Dashboard(
    uid="hubwatch-alerts",
    title="hubwatch / Alerts",
    description="What the alert rules fired, by rule, and where each alert got to.",
    time_from="now-7d",
    panels=(
        Panel(
            id="alerts_by_rule",
            dashboard="hubwatch-alerts",
            title="Alerts fired by rule",
            description="Alerts fired per interval, by rule (each alert once, whatever its "
            "targets).",
            visualisation="timeseries",
            datasource="clickhouse",
            query="""SELECT $__timeInterval(fired_at) AS time, toString(rule) AS rule,
       uniqExact(alert_id) AS alerts
FROM alerts FINAL
WHERE $__timeFilter(fired_at)
GROUP BY time, rule
ORDER BY time, rule""",
            columns=("time", "rule", "alerts"),
            x="time",
            y=("alerts",),
            series="rule",
            no_data=_NO_ALERTS,
            width=16,
        ),
        Panel(
            id="alert_delivery",
            dashboard="hubwatch-alerts",
            title="Delivery by target",
            description="Alerts per delivery target and state: queued (waiting or retrying), "
            "delivered, failed.",
            visualisation="barchart",
            datasource="clickhouse",
            query="""SELECT toString(target) AS target,
       countIf(state = 'delivered') AS delivered,
       countIf(state = 'queued') AS queued,
       countIf(state = 'failed') AS failed
FROM alerts FINAL
WHERE $__timeFilter(fired_at)
GROUP BY target
ORDER BY target""",
            columns=("target", "delivered", "queued", "failed"),
            x="target",
            y=("delivered", "queued", "failed"),
            no_data=_NO_ALERTS,
            width=8,
        ),
        Panel(
            id="recent_alerts",
            dashboard="hubwatch-alerts",
            title="Recent alerts",
            description="The latest alerts, one row per target.",
            visualisation="table",
            datasource="clickhouse",
            query="""SELECT fired_at, toString(rule) AS rule, model_id AS model, base_model,
       toString(relation) AS relation, count AS models, toString(target) AS target,
       toString(state) AS state, delivered_at, link
FROM alerts FINAL
WHERE $__timeFilter(fired_at)
ORDER BY fired_at DESC, alert_id, target
LIMIT 100""",
            columns=(
                "fired_at",
                "rule",
                "model",
                "base_model",
                "relation",
                "models",
                "target",
                "state",
                "delivered_at",
                "link",
            ),
            no_data=_NO_ALERTS,
            width=24,
        ),
    ),
)

# --- 6. Operations --------------------------------------------------------------------------


def _prom(
    id: str,
    title: str,
    description: str,
    query: str,
    series: str,
    unit: str,
    legend: str,
    width: int = 8,
) -> Panel:
    return Panel(
        id=id,
        dashboard="hubwatch-operations",
        title=title,
        description=description,
        visualisation="timeseries",
        datasource="prometheus",
        query=query,
        columns=("time", series, "value"),
        x="time",
        y=("value",),
        series=series,
        unit=unit,
        legend=legend,
        width=width,
    )


OPERATIONS = Dashboard(
    uid="hubwatch-operations",
    title="hubwatch / Operations",
    description="Is hubwatch keeping up: poll lag, rate-limit headroom, consumer lag, dead "
    "letters, ClickHouse write latency and the summaries' freshness (Prometheus, from "
    "--metrics-port).",
    time_from="now-6h",
    refresh="30s",
    panels=(
        _prom(
            "poll_lag",
            "Time since the last poll",
            "Seconds since each stream's last completed poll round.",
            "time() - max by (stream) (hubwatch_last_poll_timestamp_seconds)",
            "stream",
            "s",
            "{{stream}}",
        ),
        _prom(
            "poll_failures",
            "Failed poll rounds",
            "Poll rounds per second that failed, by stream.",
            "sum by (stream) "
            '(rate(hubwatch_poll_rounds_total{outcome="failed"}[$__rate_interval]))',
            "stream",
            "ops",
            "{{stream}}",
        ),
        _prom(
            "rate_limit_headroom",
            "Rate-limit headroom",
            "Requests left in the current rate-limit window, by API (the lowest any process "
            "reports).",
            "min by (api) (hubwatch_rate_limit_remaining)",
            "api",
            "short",
            "{{api}}",
        ),
        _prom(
            "consumer_lag",
            "Consumer lag",
            "Records the processors have yet to read, by topic.",
            "sum by (topic) (hubwatch_consumer_lag_records)",
            "topic",
            "short",
            "{{topic}}",
        ),
        _prom(
            "dead_letters",
            "Dead letters",
            "Inputs refused per second, by reason.",
            "sum by (reason) (rate(hubwatch_dead_letters_total[$__rate_interval]))",
            "reason",
            "ops",
            "{{reason}}",
        ),
        _prom(
            "write_latency",
            "ClickHouse write latency (p95)",
            "95th percentile of a batch insert's duration, by table.",
            "histogram_quantile(0.95, sum by (table, le) "
            "(rate(hubwatch_clickhouse_write_seconds_bucket[$__rate_interval])))",
            "table",
            "s",
            "{{table}}",
        ),
        _prom(
            "rows_written",
            "Rows written",
            "Rows inserted into ClickHouse per second, by table.",
            "sum by (table) (rate(hubwatch_clickhouse_rows_written_total[$__rate_interval]))",
            "table",
            "ops",
            "{{table}}",
        ),
        _prom(
            "write_retries",
            "ClickHouse write retries",
            "Batch inserts retried per second, by table.",
            "sum by (table) (rate(hubwatch_clickhouse_write_retries_total[$__rate_interval]))",
            "table",
            "ops",
            "{{table}}",
        ),
        _prom(
            "write_failures",
            "ClickHouse writes given up",
            "Batch inserts that failed for good per second, by table.",
            "sum by (table) (rate(hubwatch_clickhouse_write_failures_total[$__rate_interval]))",
            "table",
            "ops",
            "{{table}}",
        ),
        _prom(
            "summary_age",
            "Summaries: age of last refresh",
            "Seconds since each summary last refreshed successfully (every 30-60 s when "
            "healthy; a failed refresh keeps the old answer and this keeps growing: "
            "HubwatchSummaryStale fires past 5 min).",
            "time() - max by (view) (hubwatch_summary_last_success_timestamp_seconds)",
            "view",
            "s",
            "{{view}}",
            width=24,  # a row of its own: the nine above fill three rows
        ),
        Panel(
            id="dead_letters_by_reason",
            dashboard="hubwatch-operations",
            title="Dead letters kept",
            description="Rejected inputs kept in the dead_letters table, by stage and reason "
            "(what was refused and why: hubwatch sql on dead_letters has the payloads).",
            visualisation="table",
            datasource="clickhouse",
            query="""SELECT toString(stage) AS stage, toString(reason) AS reason,
       count() AS letters, max(at) AS last
FROM dead_letters
WHERE $__timeFilter(at)
GROUP BY stage, reason
ORDER BY letters DESC, stage, reason""",
            columns=("stage", "reason", "letters", "last"),
            y=("letters",),
            no_data="Nothing refused in this time range",
            width=24,
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (
    ECOSYSTEM,
    FAMILY,
    ARCHITECTURES,
    ENGAGEMENT,
    ALERTS,
    OPERATIONS,
)


def dashboard(uid: str) -> Dashboard:
    for d in DASHBOARDS:
        if d.uid == uid:
            return d
    raise KeyError(f"no dashboard {uid!r}; there are: {', '.join(d.uid for d in DASHBOARDS)}")


def panels() -> tuple[Panel, ...]:
    return tuple(p for d in DASHBOARDS for p in d.panels)


def panel(panel_id: str) -> Panel:
    for p in panels():
        if p.id == panel_id:
            return p
    raise KeyError(f"no panel {panel_id!r}")
