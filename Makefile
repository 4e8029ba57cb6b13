# Quick start: `make demo` and `make test`. Both create/update the local
# virtual environment (.venv) with the pinned stack first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmpanoptic_plus-installed
PYTEST_ARGS ?= -q -n 2 --durations=15

.PHONY: install test demo compare clean-venv

$(STAMP): setup.py requirements.txt requirements/*.txt tools/install_env.sh
	bash tools/install_env.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) demo/run_default_demo.py

# every method side by side (tools/analysis_tools/compare_methods.py; its
# defaults are sized for a 2-core CPU): outputs/compare/{table.md,
# results.json,comparison.png}. E.g. COMPARE_ARGS="--methods rtp ciae".
COMPARE_ARGS ?=
compare: $(STAMP)
	$(PY) tools/analysis_tools/compare_methods.py --out outputs/compare $(COMPARE_ARGS)

clean-venv:
	rm -rf $(VENV)
