"""A Hub-sized catalog made up on demand: millions of models with realistic lineage.

Only the lineage skeleton is kept in memory (two compact arrays); each model's JSON is built
when asked for. The relation mix follows the Hub (adapter ~43 %, finetune ~36 %, quantized
~19 %, merge ~2 %, over the ~28 % of models that have a base), and quantized models are
leaves: nothing is built on them.
"""

from __future__ import annotations

import random
from array import array
from datetime import UTC, datetime
from typing import Any

__all__ = ["RELATION_MIX", "GeneratedSource"]

RELATION_MIX = (("adapter", 0.43), ("finetune", 0.36), ("quantized", 0.19), ("merge", 0.02))
_RELATIONS = ("", "adapter", "finetune", "quantized", "merge")
_QUANTIZED = _RELATIONS.index("quantized")
_ARCHITECTURES = (
    ("LlamaForCausalLM", "llama"),
    ("MistralForCausalLM", "mistral"),
    ("Qwen2ForCausalLM", "qwen2"),
    ("Gemma2ForCausalLM", "gemma2"),
    ("BertModel", "bert"),
)


class GeneratedSource:
    """``n`` models created ``spacing`` seconds apart from ``start``, index = release order."""

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        derived_share: float = 0.28,
        start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
        spacing: float = 15.0,
        progress: Any = None,
    ) -> None:
        self.n = n
        self.seed = seed
        self.start = start.timestamp()
        self.spacing = spacing
        self.parent = array("i", [-1]) * n
        self.second_parent = array("i", [-1]) * n
        self.relation = bytearray(n)
        self._ranked: array | None = None
        rng = random.Random(seed)
        cumulative: list[tuple[float, int]] = []
        total = 0.0
        for name, share in RELATION_MIX:
            total += share
            cumulative.append((total, _RELATIONS.index(name)))
        for i in range(1, n):
            if rng.random() >= derived_share:
                continue
            roll = rng.random()
            relation = next(code for edge, code in cumulative if roll < edge)
            parent = self._buildable(rng.randrange(i))
            self.parent[i] = parent
            self.relation[i] = relation
            if _RELATIONS[relation] == "merge":
                self.second_parent[i] = self._buildable(rng.randrange(i))
            if progress is not None and i % 100_000 == 0:
                progress(i)

    def _buildable(self, index: int) -> int:
        # Quantized models stay leaves: a child of one is really a child of its base.
        while self.relation[index] == _QUANTIZED and self.parent[index] >= 0:
            index = self.parent[index]
        return index

    modified_is_created = True
    "lastModified equals createdAt until the replay edits a model (fast lastModified sort)."

    def __len__(self) -> int:
        return self.n

    @staticmethod
    def trending(index: int) -> int:
        # Cheap and index-derived, so the whole catalog can be ranked once (see ranked()).
        return ((index * 0x9E3779B1) >> 7) % 1000

    def ranked(self) -> array:
        """Indices by trendingScore, highest first, ties by ``_id`` (the index) highest
        first, the replay's listing order; built once, on first use."""
        if self._ranked is None:
            # Stable even reversed: ties keep their input order, highest index first.
            order = sorted(range(self.n - 1, -1, -1), key=self.trending, reverse=True)
            self._ranked = array("i", order)
        return self._ranked

    def repo_id(self, index: int) -> str:
        org = f"org{(index * 2654435761) % max(1, self.n // 20):05d}"
        relation = _RELATIONS[self.relation[index]]
        suffix = {"quantized": "-GGUF", "adapter": "-lora", "merge": "-merge"}.get(relation, "")
        return f"{org}/model-{index:07d}{suffix}"

    def index_of(self, repo_id: str) -> int | None:
        """The index a generated id names (``…/model-0001234…``), if it names one."""
        try:
            index = int(repo_id.split("/model-", 1)[1][:7])
        except (IndexError, ValueError):
            return None
        return index if 0 <= index < self.n and self.repo_id(index) == repo_id else None

    def created_at(self, index: int) -> str:
        ts = self.start + index * self.spacing
        return (
            datetime.fromtimestamp(ts, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def item(self, index: int) -> dict[str, Any]:
        rng = random.Random(self.seed * 1_000_003 + index)
        repo_id = self.repo_id(index)
        created = self.created_at(index)
        relation = _RELATIONS[self.relation[index]]
        architecture, model_type = _ARCHITECTURES[index % len(_ARCHITECTURES)]
        likes = int(rng.paretovariate(1.2)) - 1
        trending = self.trending(index)
        downloads = int(rng.paretovariate(0.9) * 10) - 10
        item: dict[str, Any] = {
            "_id": f"{index:024x}",
            "id": repo_id,
            "author": repo_id.partition("/")[0],
            "sha": f"{rng.getrandbits(160):040x}",
            "createdAt": created,
            "lastModified": created,
            "private": False,
            "gated": False,
            "downloads": downloads,
            "downloadsAllTime": downloads * 3,
            "likes": likes,
            "trendingScore": trending,
            "library_name": "peft" if relation == "adapter" else "transformers",
            "pipeline_tag": "text-generation",
            "tags": ["transformers", model_type],
            "config": {"architectures": [architecture], "model_type": model_type},
            "siblings": [{"rfilename": "README.md"}, {"rfilename": "config.json"}],
        }
        if relation == "quantized":
            item["tags"].append("gguf")
            item["siblings"].append({"rfilename": "model-Q4_K_M.gguf"})
        elif relation == "adapter":
            item["siblings"].append({"rfilename": "adapter_config.json"})
        else:
            item["safetensors"] = {"parameters": {"BF16": 7_000_000_000}, "total": 7_000_000_000}
        parents = [p for p in (self.parent[index], self.second_parent[index]) if p >= 0]
        if parents:
            bases = [self.repo_id(p) for p in parents]
            item["tags"] += [f"base_model:{b}" for b in bases]
            item["tags"] += [f"base_model:{relation}:{b}" for b in bases]
            item["cardData"] = {"base_model": bases[0] if len(bases) == 1 else bases}
            item["baseModels"] = {"relation": relation, "models": [{"id": b} for b in bases]}
        return item
