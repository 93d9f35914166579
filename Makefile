# The two commands a fresh machine needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
ARGS ?=

.PHONY: run test setup stack-up stack-down lint

## Run hubwatch on its embedded default (one process, no Kafka). ARGS=--replay: offline.
run:
	@deploy/install.sh --python-only
	$(VENV)/bin/hubwatch run $(ARGS)

## Install everything, start the real Kafka and ClickHouse on test ports, run the tests.
test: setup
	@deploy/test.sh

setup:
	@deploy/install.sh

## The stack for the distributed mode, on the default ports (9092, 8123/9000).
stack-up: setup
	@deploy/stack.sh up

stack-down:
	@deploy/stack.sh down

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
