-- Size and quantization of each model, and the GitHub repos its card links.
ALTER TABLE models ADD COLUMN IF NOT EXISTS parameters_source LowCardinality(String) DEFAULT '' COMMENT 'safetensors, gguf or name: where parameters came from' AFTER parameters;
ALTER TABLE models ADD COLUMN IF NOT EXISTS quant_bits Nullable(UInt8) COMMENT 'bits per weight of a quantized model (from files, tags or name)' AFTER parameters_source;
ALTER TABLE models ADD COLUMN IF NOT EXISTS size_bytes Nullable(UInt64) COMMENT 'parameters x bits / 8 when both are known' AFTER quant_bits;
ALTER TABLE models ADD COLUMN IF NOT EXISTS github_repos Array(String) COMMENT 'GitHub owner/name linked from the card' AFTER tags;
