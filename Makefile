# The two commands a fresh clone needs: `make dev` and `make test`. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help dev test test-api test-trainer check lint types db-generate

help:
	@echo "make dev    # run the platform locally (API on http://127.0.0.1:\$$PORT, default 8787)"
	@echo "make test   # run every test suite"

# exec: make's child is dev.sh itself, so the SIGTERM make forwards to its child on a TERM reaches
# the script that stops wrangler, workerd, the trainer and the demo.
dev:
	@exec bash scripts/dev.sh

# The trainer suite first: it builds gpu-trainer/.venv, which the end-to-end tests start `serve` from.
test: test-trainer check

# tsc + biome + wrangler deploy --dry-run + client freshness + vitest (workerd and end-to-end).
check:
	@source scripts/env.sh && npm run check

test-api:
	@source scripts/env.sh && npm test

test-trainer:
	@bash gpu-trainer/scripts/test.sh

types:
	@source scripts/env.sh && npm run types

db-generate:
	@source scripts/env.sh && npm run db:generate
