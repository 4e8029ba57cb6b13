# Quick start: `make demo` and `make test`. Both create/update the local
# virtual environment (.venv) with the pinned stack first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmpanoptic_plus-installed
PYTEST_ARGS ?= -q -n 2 --durations=15

.PHONY: install test demo clean-venv

$(STAMP): setup.py requirements.txt requirements/*.txt tools/install_env.sh
	bash tools/install_env.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) demo/run_default_demo.py

clean-venv:
	rm -rf $(VENV)
