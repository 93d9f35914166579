"""Processors: plain functions over events; faust agents and the embedded runner adapt them."""
