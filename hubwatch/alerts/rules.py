"""Alert rules from YAML: loaded, checked, and every mistake named by file, line and field.

The file has three sections (docs/alerts.md has the whole reference and examples)::

    targets:                # where alerts go, by name
      team: {type: slack, url: https://hooks.slack.com/services/...}
    rules:
      - name: quantizations-of-ours
        match: {base_model: mistralai/Mistral-Small-24B-Base-2501, relation: quantized}
        group: 10m          # a burst under one base becomes one alert
        targets: [team]
    silences:
      - {rule: quantizations-of-ours, model: "bartowski/*", until: 2026-12-01T00:00:00Z}

The YAML is composed into nodes (PyYAML keeps each node's line) and checked node by node, so
an error reads ``rules.yaml:14: rules[0].match.relation: 'quantised' is not one of …``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hubwatch.errors import ConfigError
from processors.lineage import RELATIONS

__all__ = [
    "ENGAGEMENT_FIELDS",
    "QUANTIZATION_FORMATS",
    "TARGET_TYPES",
    "Match",
    "Range",
    "Rule",
    "RuleSet",
    "Silence",
    "Target",
    "load_rules",
    "parse_duration",
    "parse_rules",
    "parse_targets",
]

TARGET_TYPES = ("webhook", "slack", "discord", "alertmanager")
"Delivery targets a rules file can name (the terminal is hubwatch run's own)."
QUANTIZATION_FORMATS = ("gguf", "gptq", "awq", "exl2", "mlx", "bnb")
ENGAGEMENT_FIELDS = (
    "likes_1h",
    "likes_24h",
    "likes_7d",
    "downloads_1h",
    "downloads_24h",
    "downloads_7d",
    "velocity",
    "breakout",
)
"Thresholds on the live engagement windows (processors/engagement.py): each is a minimum."
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``24h``, ``7d`` -> seconds."""
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 90s, 10m, 24h or 7d")
    return float(found[1]) * _UNIT[found[2]]


@dataclass(frozen=True, slots=True)
class Range:
    low: float | None = None
    high: float | None = None

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True, slots=True)
class Match:
    """What a model must be for its rule to fire: every condition given must hold."""

    base_models: tuple[str, ...] = ()
    "Watched bases (any): the model derives from one, directly or (``descendants``) below."
    descendants: bool = True
    "Anywhere in the base's family tree, not only its direct derivatives."
    authors: tuple[str, ...] = ()
    "Author or org: the repo id's namespace (case-insensitive)."
    architectures: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    "The model's relation to its primary base."
    parameters: Range | None = None
    quantization: bool | tuple[str, ...] | None = None
    "True: any quantization; a list: one of these formats; False: not quantized."
    licences: tuple[str, ...] = ()
    licence_differs_from_base: bool | None = None
    card: re.Pattern[str] | None = None
    "Searched in the card text (the card's metadata, tags, pipeline and library)."
    max_age_seconds: float | None = 86_400.0
    "Only models created this recently (a backfill of old models fires nothing)."
    engagement: dict[str, float] = field(default_factory=dict)
    "Minimums on the live windows; with any, the rule is checked on snapshots."


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    match: Match
    targets: tuple[str, ...]
    group_seconds: float = 0.0
    "Matches under one base within this window become one alert (0: each alone)."
    repeat: bool = False
    "Fire again for a model each time it matches (else once per rule and model)."
    line: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    type: str
    url: str


@dataclass(frozen=True, slots=True)
class Silence:
    until: datetime
    rule: str | None = None
    model: str | None = None
    "A glob (``org/*``) on the model id."
    comment: str = ""

    def covers(self, rule: str, model_id: str, at: datetime) -> bool:
        from fnmatch import fnmatchcase

        return (
            at < self.until
            and (self.rule is None or self.rule == rule)
            and (self.model is None or fnmatchcase(model_id.lower(), self.model.lower()))
        )


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    targets: dict[str, Target] = field(default_factory=dict)
    silences: tuple[Silence, ...] = ()
    source: str = ""

    def silenced(self, rule: str, model_id: str, at: datetime) -> bool:
        return any(s.covers(rule, model_id, at) for s in self.silences)

    @property
    def watches_engagement(self) -> bool:
        return any(r.match.engagement for r in self.rules)


class _Checker:
    """Walks composed YAML nodes; every error names the file, the line and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, path: str, message: str) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else 1
        return ConfigError(f"{self.source}:{line}: {path}: {message}")

    def mapping(
        self, node: yaml.Node, path: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "expected a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if not isinstance(name, str):
                raise self.fail(key, path, "keys must be names")
            if name in out:
                raise self.fail(key, f"{path}.{name}", "given twice")
            if allowed and name not in allowed:
                raise self.fail(
                    key, f"{path}.{name}", f"unknown field (known: {', '.join(allowed)})"
                )
            out[name] = (key, value)
        return out

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, "expected a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a single value")
        return yaml.safe_load(yaml.serialize(node))

    def text(self, node: yaml.Node, path: str) -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, path, "expected text")
        return value.strip()

    def texts(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        """One value or a list of them."""
        if isinstance(node, yaml.SequenceNode):
            items = tuple(self.text(n, f"{path}[{i}]") for i, n in enumerate(node.value))
            if not items:
                raise self.fail(node, path, "an empty list matches nothing")
            return items
        return (self.text(node, path),)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            raise self.fail(node, path, "expected true or false")
        return value

    def number(self, node: yaml.Node, path: str) -> float:
        value = self.scalar(node, path)
        if isinstance(value, str):
            value = _parse_count(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(node, path, "expected a number, at least 0 (7e9 and 7B both work)")
        return float(value)

    def duration(self, node: yaml.Node, path: str) -> float:
        value = self.scalar(node, path)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            raise self.fail(node, path, str(exc)) from None

    def choice(self, node: yaml.Node, path: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        values = self.texts(node, path)
        for value in values:
            if value not in allowed:
                raise self.fail(node, path, f"{value!r} is not one of {', '.join(allowed)}")
        return values


def _parse_count(text: str) -> float | str:
    """``7B``, ``500M``, ``1.5k``: a count; anything else stays text (and is refused)."""
    found = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMbBtT]?)\s*$", text)
    if not found:
        try:
            return float(text)
        except ValueError:
            return text
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[found[2].lower()]
    return float(found[1]) * scale


def _match(c: _Checker, node: yaml.Node, path: str) -> Match:
    fields = c.mapping(
        node,
        path,
        (
            "base_model",
            "descendants",
            "author",
            "architecture",
            "relation",
            "parameters",
            "quantization",
            "license",
            "license_differs_from_base",
            "card",
            "max_age",
            "engagement",
        ),
    )
    values: dict[str, Any] = {}
    readers: dict[str, tuple[str, Callable[[yaml.Node, str], Any]]] = {
        "base_model": ("base_models", c.texts),
        "descendants": ("descendants", c.boolean),
        "author": ("authors", lambda n, p: tuple(a.lower() for a in c.texts(n, p))),
        "architecture": ("architectures", c.texts),
        "relation": ("relations", lambda n, p: c.choice(n, p, RELATIONS)),
        "license": ("licences", lambda n, p: tuple(x.lower() for x in c.texts(n, p))),
        "license_differs_from_base": ("licence_differs_from_base", c.boolean),
    }
    for key, (name, read) in readers.items():
        if key in fields:
            values[name] = read(fields[key][1], f"{path}.{key}")
    if "parameters" in fields:
        values["parameters"] = _range(c, fields["parameters"][1], f"{path}.parameters")
    if "quantization" in fields:
        value_node = fields["quantization"][1]
        if isinstance(value_node, yaml.ScalarNode) and isinstance(c.scalar(value_node, ""), bool):
            values["quantization"] = c.boolean(value_node, f"{path}.quantization")
        else:
            formats = c.choice(value_node, f"{path}.quantization", QUANTIZATION_FORMATS)
            values["quantization"] = formats
    if "card" in fields:
        pattern = c.text(fields["card"][1], f"{path}.card")
        try:
            values["card"] = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise c.fail(
                fields["card"][1], f"{path}.card", f"not a regular expression: {exc}"
            ) from None
    if "max_age" in fields:
        value_node = fields["max_age"][1]
        none = isinstance(value_node, yaml.ScalarNode) and c.scalar(value_node, "") is None
        values["max_age_seconds"] = None if none else c.duration(value_node, f"{path}.max_age")
    if "engagement" in fields:
        thresholds = c.mapping(fields["engagement"][1], f"{path}.engagement", ENGAGEMENT_FIELDS)
        if not thresholds:
            raise c.fail(fields["engagement"][1], f"{path}.engagement", "no threshold given")
        values["engagement"] = {
            k: c.number(v, f"{path}.engagement.{k}") for k, (_, v) in thresholds.items()
        }
    if not fields:
        raise c.fail(node, path, "matches every model: give at least one condition")
    return Match(**values)


def _range(c: _Checker, node: yaml.Node, path: str) -> Range:
    fields = c.mapping(node, path, ("min", "max"))
    if not fields:
        raise c.fail(node, path, "give min, max or both")
    low = c.number(fields["min"][1], f"{path}.min") if "min" in fields else None
    high = c.number(fields["max"][1], f"{path}.max") if "max" in fields else None
    if low is not None and high is not None and low > high:
        raise c.fail(node, path, "min is above max")
    return Range(low, high)


def _target(c: _Checker, name: str, node: yaml.Node, path: str) -> Target:
    fields = c.mapping(node, path, ("type", "url"))
    for required in ("type", "url"):
        if required not in fields:
            raise c.fail(node, f"{path}.{required}", "missing")
    kind = c.choice(fields["type"][1], f"{path}.type", TARGET_TYPES)[0]
    url = c.text(fields["url"][1], f"{path}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise c.fail(fields["url"][1], f"{path}.url", f"{url!r} is not an http(s) URL")
    return Target(name, kind, url)


def _rule(c: _Checker, node: yaml.Node, path: str, targets: dict[str, Target]) -> Rule:
    fields = c.mapping(node, path, ("name", "match", "targets", "group", "repeat"))
    for required in ("name", "match"):
        if required not in fields:
            raise c.fail(node, f"{path}.{required}", "missing")
    name = c.text(fields["name"][1], f"{path}.name")
    if not _NAME.match(name):
        raise c.fail(fields["name"][1], f"{path}.name", "letters, digits, '.', '_' and '-' only")
    named: tuple[str, ...] = ()
    if "targets" in fields:
        named = c.texts(fields["targets"][1], f"{path}.targets")
        for target in named:
            if target not in targets and target != "terminal":
                known = ", ".join([*targets, "terminal"])
                raise c.fail(
                    fields["targets"][1],
                    f"{path}.targets",
                    f"no target named {target!r} (known: {known})",
                )
    group = 0.0
    if "group" in fields:
        group = c.duration(fields["group"][1], f"{path}.group")
    repeat = c.boolean(fields["repeat"][1], f"{path}.repeat") if "repeat" in fields else False
    match = _match(c, fields["match"][1], f"{path}.match")
    if group and match.engagement:
        raise c.fail(fields["group"][1], f"{path}.group", "engagement rules are not grouped")
    return Rule(name, match, named, group, repeat, node.start_mark.line + 1)


def _silence(c: _Checker, node: yaml.Node, path: str, rules: set[str]) -> Silence:
    fields = c.mapping(node, path, ("rule", "model", "until", "comment"))
    if "until" not in fields:
        raise c.fail(node, f"{path}.until", "missing: a silence needs an end time")
    until_node = fields["until"][1]
    raw = c.scalar(until_node, f"{path}.until")
    if isinstance(raw, datetime):
        until = raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    else:
        try:
            until = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise c.fail(until_node, f"{path}.until", f"{raw!r} is not a time") from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
    rule = c.text(fields["rule"][1], f"{path}.rule") if "rule" in fields else None
    if rule is not None and rule not in rules:
        raise c.fail(fields["rule"][1], f"{path}.rule", f"no rule named {rule!r}")
    model = c.text(fields["model"][1], f"{path}.model") if "model" in fields else None
    comment = c.text(fields["comment"][1], f"{path}.comment") if "comment" in fields else ""
    return Silence(until.astimezone(UTC), rule, model, comment)


def parse_targets(text: str, source: str = "HUBWATCH_ALERT_TARGETS") -> dict[str, Target]:
    """``name=type=url`` pairs, comma-separated: targets kept out of the rules file (a
    webhook URL is often a secret)."""
    targets: dict[str, Target] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, rest = part.partition("=")
        kind, _, url = rest.partition("=")
        name, kind, url = name.strip(), kind.strip(), url.strip()
        parts = urlsplit(url)
        if not _NAME.match(name) or name == "terminal":
            raise ConfigError(f"{source}: {name!r} is not a usable target name")
        if kind not in TARGET_TYPES:
            raise ConfigError(
                f"{source}: {name}: type {kind!r} is not one of {', '.join(TARGET_TYPES)}"
            )
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{source}: {name}: the URL must be http(s) (name=type=url)")
        targets[name] = Target(name, kind, url)
    return targets


def parse_rules(
    text: str, source: str = "<rules>", *, targets: dict[str, Target] | None = None
) -> RuleSet:
    """Check and load a rules document; :class:`ConfigError` names file, line and field.
    ``targets`` are defined elsewhere (settings) and may be named by the rules too."""
    c = _Checker(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}:{line}: not valid YAML: {problem}") from None
    if root is None:
        raise ConfigError(f"{source}:1: empty: a rules file needs a rules list")
    top = c.mapping(root, "(top)", ("targets", "rules", "silences"))
    predefined = dict(targets or {})
    targets = dict(predefined)
    if "targets" in top:
        for name, (key, value) in c.mapping(top["targets"][1], "targets", ()).items():
            if not _NAME.match(name) or name == "terminal":
                raise c.fail(key, f"targets.{name}", "not a usable target name")
            if name in predefined:
                raise c.fail(key, f"targets.{name}", "also defined in HUBWATCH_ALERT_TARGETS")
            targets[name] = _target(c, name, value, f"targets.{name}")
    if "rules" not in top:
        raise c.fail(root, "rules", "missing")
    rules: list[Rule] = []
    for index, node in enumerate(c.sequence(top["rules"][1], "rules")):
        rule = _rule(c, node, f"rules[{index}]", targets)
        if any(r.name == rule.name for r in rules):
            raise c.fail(node, f"rules[{index}].name", f"{rule.name!r} is used twice")
        rules.append(rule)
    names = {r.name for r in rules}
    silences = ()
    if "silences" in top:
        silences = tuple(
            _silence(c, node, f"silences[{i}]", names)
            for i, node in enumerate(c.sequence(top["silences"][1], "silences"))
        )
    return RuleSet(tuple(rules), targets, silences, source)


def load_rules(path: Path | str, *, targets: dict[str, Target] | None = None) -> RuleSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the rules file: {exc}") from None
    return parse_rules(text, str(path), targets=targets)
