# Full reliability runs (README, "Reliability"). The default `pytest` run does short versions.
#   make reliability                  everything below
#   make reliability-crash CYCLES=200 the crash harness on SQLite and PostgreSQL, then the
#                                     negative control (durability broken on purpose)
#   make reliability-audit            the demo history on SQLite and PostgreSQL: verify the
#                                     archive's hash chain, replay every published date
# Benchmarks (README, "Feed benchmarks" and "Benchmarks"), each beside its peers:
#   make bench                        every benchmark in benchmarks/, ratios printed

BCPI ?= $(CURDIR)/.venv/bin/bcpi
PYTHON ?= $(CURDIR)/.venv/bin/python
# The crash harness is test tooling (tests/reliability): run as modules from the repository root.
HARNESS = cd $(CURDIR) && PYTHONPATH=$(CURDIR) $(PYTHON) -m tests.reliability
CYCLES ?= 200
SEED ?= 7
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/test
PG_DEMO_DB ?= bcpi_reliability_demo
PG_DEMO_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/$(PG_DEMO_DB)
RUN_DIR ?= $(CURDIR)/var/reliability
PYTEST ?= $(CURDIR)/.venv/bin/pytest

.PHONY: reliability reliability-crash reliability-audit reliability-audit-sqlite \
	reliability-audit-postgresql bench

bench:
	$(PYTEST) benchmarks --benchmark-enable -s

reliability: reliability-crash reliability-audit

reliability-crash:
	$(HARNESS).crash --cycles $(CYCLES) --seed $(SEED) --database sqlite
	$(HARNESS).crash --cycles $(CYCLES) --seed $(SEED) --database postgresql \
		--postgres-url $(PG_ADMIN_URL)
	$(HARNESS).crash --cycles 3 --seed $(SEED) --database sqlite --negative-control

reliability-audit: reliability-audit-sqlite reliability-audit-postgresql

# The demo archives under ./var/archive of the directory it runs in.
reliability-audit-sqlite:
	rm -rf $(RUN_DIR)/demo-sqlite && mkdir -p $(RUN_DIR)/demo-sqlite
	cd $(RUN_DIR)/demo-sqlite && $(BCPI) demo --no-serve --database-url sqlite:///./demo.db
	cd $(RUN_DIR)/demo-sqlite && $(BCPI) audit verify --database-url sqlite:///./demo.db
	cd $(RUN_DIR)/demo-sqlite && $(BCPI) audit replay --all --database-url sqlite:///./demo.db

reliability-audit-postgresql:
	rm -rf $(RUN_DIR)/demo-postgresql && mkdir -p $(RUN_DIR)/demo-postgresql
	$(HARNESS).server fresh-database --postgres-url $(PG_ADMIN_URL) --name $(PG_DEMO_DB)
	cd $(RUN_DIR)/demo-postgresql && $(BCPI) demo --no-serve --database-url $(PG_DEMO_URL)
	cd $(RUN_DIR)/demo-postgresql && $(BCPI) audit verify --database-url $(PG_DEMO_URL)
	cd $(RUN_DIR)/demo-postgresql && $(BCPI) audit replay --all --database-url $(PG_DEMO_URL)
	$(HARNESS).server fresh-database --postgres-url $(PG_ADMIN_URL) --name $(PG_DEMO_DB) --drop
