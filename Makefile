# Two entry points for a fresh machine (Python 3.11, no GPU):
#   make demo   - install into .venv, train on the built-in dataset, write sample/reconstruction/mix grids
#   make test   - install into .venv (and, as root, Debian's chromium for the browser test), lint, run the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

DEMO_RUN ?= runs/demo
AUTOMOD := $(VENV)/bin/automod

.PHONY: install browser lint format test demo small-scale clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The page of `automod serve` is tested in a real headless Chromium (tests/test_serve_browser.py): Debian's chromium
# package, installed here when missing and we are root (as CI is); elsewhere that test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "note: apt-get could not install chromium; the browser test will be skipped"; \
	else echo "note: no chromium here and not root to install it; the browser test will be skipped"; fi

# ruff's checks (pyproject.toml, [tool.ruff]) over all the Python code: pyflakes' errors, the line limit, and the
# code as the formatter lays it out (make format fixes that)
lint: $(STAMP)
	$(PY) -m ruff check --quiet .
	$(PY) -m ruff format --check --quiet .

# lay code out with ruff's formatter at 110 columns: make format FILES="automod_cli/x.py ..." (default: all)
format: $(STAMP)
	$(PY) -m ruff format $(or $(FILES),.)

test: $(STAMP) browser lint
	$(PY) -m pytest -q

# Train on the built-in dataset (at most ten minutes of training: --time-budget 10); the run writes sample,
# reconstruction and style-mix grids per phase into $(DEMO_RUN)/grids/. Running it again continues or re-finishes the
# same run, with the budget it started with. At the end: the held-out reconstruction and mixing errors beside the
# mean image's, and $(DEMO_RUN)/demo.png (held-out pairs with their reconstructions, the true mix and the model's).
demo: $(STAMP)
	if [ -d $(DEMO_RUN)/checkpoints ]; then $(AUTOMOD) train --resume $(DEMO_RUN); else $(AUTOMOD) train --out $(DEMO_RUN) --time-budget 10; fi
	@ls -1 $(DEMO_RUN)/grids/32-*.png
	$(PY) scripts/demo_report.py $(DEMO_RUN) --json $(DEMO_RUN)/demo.json

# The small-scale comparison of docs/results/small-scale.md: every model on the built-in data with the same budget
# (seed 0; seeds 1 and 2 for the NeurIPS Table 1-2 variants), then the table and grids (about 2 h on 2 CPU cores).
SEEDED := automod automod-no-lj automod-l1 pioneer vae-adain wae-adain
small-scale: $(STAMP)
	MAX_RES=16 scripts/small_scale.sh 0
	MAX_RES=16 ONLY="$(SEEDED)" scripts/small_scale.sh 1 2
	scripts/small_scale_table.sh

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
