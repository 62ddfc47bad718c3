# actionpipe: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := samples/demo.mp4

.PHONY: install samples demo test bench model clean

install: $(STAMP) $(SAMPLE)

# Re-installs only when the dependency list changes, so a second `make install` is quick.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

samples: $(SAMPLE)

$(SAMPLE): samples/fetch_demo.py
	$(PYTHON) samples/fetch_demo.py $(SAMPLE)

demo: install
	$(BIN)/actionpipe classify $(SAMPLE)

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/bench_pose.py
	$(BIN)/python benchmarks/bench_stgcn.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
