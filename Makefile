# actionpipe: `make demo` and `make test` do all the set-up on a fresh machine; `make docs` builds the site.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SAMPLE := samples/demo.mp4

.PHONY: install samples demo test test-fast docs wheel-test bench model model-general clean

install: $(STAMP) $(SAMPLE)

# Re-installs only when the dependency list changes, so a second `make install` is quick.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray,docs]'
	touch $(STAMP)

samples: $(SAMPLE)

$(SAMPLE): samples/fetch_demo.py
	$(PYTHON) samples/fetch_demo.py $(SAMPLE)

# samples/squat.mp4 ships in the repository (CC BY 3.0, credits in samples/README.md).
demo: install
	$(BIN)/actionpipe classify samples/squat.mp4 $(SAMPLE)

test: install
	$(BIN)/python -m pytest -q

# The suite without the tests marked slow (the real models end to end, training, the eval re-measure).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# The documentation site (mkdocs.yml, docs/) into site/: open site/index.html, offline. --strict: a broken
# link or anchor, or an API reference that names nothing, fails the build.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Builds the wheel, installs it into a fresh venv (seeded with .venv's third-party packages;
# WHEEL_TEST_FULL=1 installs them from the index instead) and classifies samples/squat.mp4 from
# outside the checkout: the wheel carries the code and the models (about 40 s).
wheel-test: install
	PYTHON=$(PYTHON) bash .ci/wheel-test

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

# Reproduces models/general-stgcn/ (the default model) from scratch (needs ../shared/datasets: Penn
# Action, UTD-MHAD, JHMDB): trains on the three train splits with the committed config (45 epochs,
# one CPU thread: 53-54 s an epoch on this idle 2-core machine, about 40 min; about 85 s with two
# other trainings sharing the cores; resumes if interrupted), fits the calibration and open-set rule
# (calibrate) and records the test-split accuracies into the card.
GENERAL_DIR := models/general-stgcn
GENERAL_RUN := build/general-stgcn
SHARED      := ../shared/datasets
model-general: install
	mkdir -p build
	$(BIN)/actionpipe train --config $(GENERAL_DIR)/config.json -o $(GENERAL_RUN) --threads 1 \
		$$(test -f $(GENERAL_RUN)/checkpoint.pt && echo --resume)
	cp $(GENERAL_RUN)/card.json $(GENERAL_RUN)/weights.pt $(GENERAL_DIR)/
	$(BIN)/actionpipe calibrate --model $(GENERAL_DIR)
	for data in penn:$(SHARED)/penn_action utd:$(SHARED)/utd_mhad utd:$(SHARED)/utd_mhad@45 \
	            utd:$(SHARED)/utd_mhad@90 jhmdb:$(SHARED)/jhmdb_partial/split3.npz; do \
		$(BIN)/actionpipe eval --model $(GENERAL_DIR) --dataset $$data --split test --record || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache site
