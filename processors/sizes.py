"""A model's size: parameter count (safetensors, else GGUF metadata, else its name),
quantization bits (files, tags, name) and bytes. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubwatch.events import ModelCreated

__all__ = ["Size", "model_size", "params_from_name", "quant_bits"]

# "24B", "7b", "1.5B", "135M", "8x7B" (experts), not "v1b" or "fp16".
_NAME_PARAMS = re.compile(r"(?<![A-Za-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)([bBmM])(?![A-Za-z0-9])")
_GGUF_QUANT = re.compile(r"(?<![A-Za-z0-9])I?Q(\d)(?:_[A-Z0-9]+)*(?![0-9])", re.IGNORECASE)
_BITS = re.compile(r"(?<![0-9.])(\d)(?:\.\d+)?[-_]?(?:bit|bpw|bits)(?![a-z])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Size:
    parameters: int | None
    parameters_source: str
    "safetensors, gguf, name, or empty when unknown."
    quant_bits: int | None
    size_bytes: int | None


def params_from_name(name: str) -> int | None:
    """Parameters a repo name states (``Mistral-Small-24B`` -> 24e9), if it states one."""
    # The last size in a name is the model's own (not a base's it starts with).
    found = list(_NAME_PARAMS.finditer(name.rpartition("/")[2]))
    if not found:
        return None
    experts, number, unit = found[-1].groups()
    value = float(number) * (1e9 if unit in "bB" else 1e6) * (int(experts) if experts else 1)
    return int(value)


def quant_bits(repo_id: str, tags: tuple[str, ...], files: tuple[str, ...]) -> int | None:
    """Bits per weight of a quantized model: GGUF quant names (Q4_K_M, IQ3_XS), "4bit",
    "4.0bpw", GPTQ/AWQ (4 unless stated); None for an unquantized one."""
    texts = [repo_id.rpartition("/")[2], *tags, *(f for f in files if not f.endswith(".md"))]
    for text in texts:
        if match := _GGUF_QUANT.search(text):
            return int(match[1])
    for text in texts:
        if match := _BITS.search(text):
            return int(match[1])
    lowered = " ".join(texts).lower()
    if any(k in lowered for k in ("gptq", "awq", "bnb", "bitsandbytes")):
        return 4
    if "fp8" in lowered or "int8" in lowered:
        return 8
    return None


def model_size(event: ModelCreated) -> Size:
    if event.parameters:
        parameters, source = event.parameters, "safetensors"
    elif event.gguf_parameters:
        parameters, source = event.gguf_parameters, "gguf"
    elif (named := params_from_name(event.repo_id)) is not None:
        parameters, source = named, "name"
    else:
        parameters, source = None, ""
    bits = quant_bits(event.repo_id, event.tags, event.siblings)
    size = parameters * (bits or 16) // 8 if parameters else None
    return Size(parameters, source, bits, size)
