# Linli's two everyday commands are `make run` and `make test`; see README.md.
# GNU make. Recipes are indented with tabs.

VENV ?= .venv
PY = $(VENV)/bin/python
# Touched after a successful install, so the venv is rebuilt only when pyproject.toml changes.
STAMP = $(VENV)/.linli-installed

.DEFAULT_GOAL := help
.PHONY: help venv catalogs run test fuzz bench-updates bench-broadcast bench-opinion bench-polis bench-export bench-startup i18n clean distclean

help:
	@echo "make run            install if needed, compile translations, run Linli (console, or Telegram with TELEGRAM_BOT_TOKEN)"
	@echo "make test           ruff, mypy, import-linter, the catalog check, then pytest (SQLite and PostgreSQL)"
	@echo "make fuzz           the fuzz test's long run: 1000 random event sequences on each database (about 15 minutes)"
	@echo "make bench-updates  the update-throughput benchmark"
	@echo "make bench-broadcast the delivery engine's broadcast benchmark (rate achieved, CPU per message)"
	@echo "make bench-opinion  the opinion map's time and memory at three sizes, against red-dwarf where it installs,"
	@echo "                    and 100,000 x 1,000 (10 million votes) read from PostgreSQL into the map"
	@echo "make bench-polis    the opinion map against Pol.is's own groups and red-dwarf's on four real conversations (ARI, seeds)"
	@echo "make bench-export   exporting a 20,000 x 500 consultation in every format, and its opinion map (residents' p99 meanwhile)"
	@echo "make bench-startup  how long \`linli --help\` takes and how much memory an idle \`linli run\` holds (JSON)"
	@echo "make i18n           extract, update and compile the translation catalogs"
	@echo "make clean          remove caches and compiled catalogs (keeps .venv and the data in var/)"
	@echo "make distclean      clean, and remove $(VENV)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Compiled catalogs are build output (.gitignore'd); compiling is quick, so it always runs.
catalogs: $(STAMP)
	$(PY) -m i18n.catalog compile

run: $(STAMP) catalogs
	$(VENV)/bin/linli run

# Fails at the first step that fails, in this order. No network: pytest reaches only 127.0.0.1.
test: $(STAMP) catalogs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy community consultation volunteers bot i18n tests bench migrations
	$(VENV)/bin/lint-imports
	$(PY) -m i18n.catalog check
	$(VENV)/bin/pytest

# make test runs tests/test_fuzz.py's short, derandomized profile; this runs its long profile, at random (failing
# examples are kept in .hypothesis/ and tried first next time).
fuzz: $(STAMP) catalogs
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest -q tests/test_fuzz.py

bench-updates: $(STAMP) catalogs
	$(PY) bench/bench_updates.py

bench-broadcast: $(STAMP)
	$(PY) bench/bench_broadcast.py

# red-dwarf (the bench extra) is only for comparison: the benchmark runs without it if it does not install.
bench-opinion: $(STAMP)
	$(PY) -c "import reddwarf" 2>/dev/null || $(PY) -m pip install --quiet -e '.[dev,bench]' || echo "red-dwarf did not install: timing Linli alone"
	$(PY) bench/bench_opinion.py

bench-polis: $(STAMP)
	$(PY) -c "import reddwarf" 2>/dev/null || $(PY) -m pip install --quiet -e '.[dev,bench]' || echo "red-dwarf did not install: reddwarf_ari will be null"
	$(PY) bench/bench_polis.py

# The report's text is translated: the catalogs must be compiled.
bench-export: $(STAMP) catalogs
	$(PY) bench/bench_export.py

# `linli run` refuses to start without compiled catalogs.
bench-startup: $(STAMP) catalogs
	$(PY) bench/bench_startup.py

i18n: $(STAMP)
	$(PY) -m i18n.catalog all

# Never removes var/: that is the operator's database.
clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache build *.egg-info
	find community consultation volunteers bot i18n tests bench migrations -name __pycache__ -type d -prune -exec rm -rf {} +
	find i18n/locales -name '*.mo' -delete

distclean: clean
	rm -rf $(VENV)
