# Two entry points for a fresh machine (Python 3.11, no GPU):
#   make demo   - install into .venv, train on the built-in dataset, write sample/reconstruction/mix grids
#   make test   - install into .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

DEMO_RUN ?= runs/demo
AUTOMOD := $(VENV)/bin/automod

.PHONY: install test demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Train on the built-in dataset (about ten minutes on a 2-core CPU); the run writes sample, reconstruction and
# style-mix grids per phase into $(DEMO_RUN)/grids/. Running it again continues or re-finishes the same run.
demo: $(STAMP)
	if [ -d $(DEMO_RUN)/checkpoints ]; then $(AUTOMOD) train --resume $(DEMO_RUN); else $(AUTOMOD) train --out $(DEMO_RUN); fi
	@ls -1 $(DEMO_RUN)/grids/32-*.png

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
