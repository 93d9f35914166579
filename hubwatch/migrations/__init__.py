"""Ordered ClickHouse DDL: ``NNNN_name.sql``, applied by ``hubwatch migrate``."""
