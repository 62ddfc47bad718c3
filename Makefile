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

# Reproduces models/penn-action-stgcn/ from scratch (needs ../shared/datasets/penn_action): trains on
# the Penn Action train split with the committed config (80 epochs at 16-20 s each on one CPU thread:
# about 22 min; same weights as shipped; resumes if interrupted), then measures the test split into
# the card (about 1 min) and fits the calibration temperature and the open-set statistics into it
# (actionpipe calibrate, about 2 min).
MODEL_DIR := models/penn-action-stgcn
MODEL_RUN := build/penn-action-stgcn
model: install
	mkdir -p build
	$(BIN)/actionpipe train --config $(MODEL_DIR)/config.json -o $(MODEL_RUN) --threads 1 \
		$$(test -f $(MODEL_RUN)/checkpoint.pt && echo --resume)
	cp $(MODEL_RUN)/card.json $(MODEL_RUN)/weights.pt $(MODEL_DIR)/
	$(BIN)/actionpipe eval --model $(MODEL_DIR) --dataset penn:../shared/datasets/penn_action --split test \
		--record --plot $(MODEL_RUN)/confusion.png
	$(BIN)/actionpipe calibrate --model $(MODEL_DIR)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
