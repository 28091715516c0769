# Thin targets, one command each. The virtual environment is (re)built whenever setup.cfg changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EK := $(BIN)/emotion-keras

MODEL ?= vgg6
SPLIT ?= 0
# Without DATA the demo dataset is used (generated on first use) with the `demo` recipe; with
# DATA and META the paper's configuration of the model (experiments/$(MODEL).json) is used.
ifdef DATA
CONFIG ?= $(MODEL)
DATA_FLAGS := --data-dir $(DATA) --meta-dir $(META)
else
CONFIG ?= demo
DATA_FLAGS :=
endif
# The run directory `make train` writes and `make evaluate/export` read.
RUN ?= runs/$(CONFIG)-$(MODEL)-split$(SPLIT)
TRAIN_FLAGS := --run-dir $(RUN) $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(SEED),--seed $(SEED)) $(if $(SCHEDULE),--schedule $(SCHEDULE)) \
	$(if $(STRATEGY),--strategy $(STRATEGY)) $(if $(MIXED_PRECISION),--mixed-precision) $(if $(XLA),--jit-compile)

.PHONY: help venv train evaluate export table ensemble melspec predict tensorboard test test-fast lint format bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create or refresh the virtual environment

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

train: venv ## Train MODEL (demo data unless DATA=melspecs META=metadata); SPLIT EPOCHS RUN SEED SCHEDULE STRATEGY MIXED_PRECISION=1 XLA=1
	$(EK) train --config $(CONFIG) --model $(MODEL) --split $(SPLIT) $(DATA_FLAGS) $(TRAIN_FLAGS)

evaluate: venv ## Score RUN's best checkpoint on the test split (writes into RUN)
	$(EK) evaluate $(RUN)

export: venv ## Export RUN as a SavedModel (RUN/export, or OUT=dir; OVERWRITE=1 replaces an earlier export)
	$(EK) export $(RUN) $(if $(OUT),--out $(OUT)) $(if $(OVERWRITE),--overwrite)

# Every evaluated run directory under runs/ unless RUNS="dir1 dir2" is given.
RUNS ?= $(patsubst %/metrics.json,%,$(wildcard runs/*/metrics.json))

table: venv ## Print the paper's Table 2 (Markdown) for RUNS (default: evaluated runs/*); CSV=file
	$(EK) table $(RUNS) $(if $(CSV),--csv $(CSV))

ensemble: venv ## Average the evaluated RUNS="dir1 dir2 ..." into OUT (default runs/ensemble); OVERWRITE=1
	$(EK) ensemble $(RUNS) --out $(or $(OUT),runs/ensemble) $(if $(OVERWRITE),--overwrite)

$(VENV)/.audio: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[audio]'
	touch $@

melspec: $(VENV)/.audio ## Mel-spectrograms of AUDIO (files/folders) into OUT, as the dataset's
	$(EK) melspec $(AUDIO) --out $(OUT)

predict: $(VENV)/.audio ## Tags for AUDIO (audio or .npy files/folders) with MODEL=run-or-export dir
	$(EK) predict $(MODEL) $(AUDIO) $(if $(FORMAT),--format $(FORMAT)) $(if $(TOP_K),--top-k $(TOP_K))

tensorboard: venv ## Serve the TensorBoard reviews of every run under RUNS_DIR (default runs/)
	$(BIN)/tensorboard --logdir $(or $(RUNS_DIR),runs)

# `make bench` trains MODEL (vgg6 by default, like `make train`) at BATCH (default 64) in float32.
# The benchmarks live outside the package, in benchmarks/ (see BENCHMARKS.md).
bench: venv ## Benchmark the tf.data pipeline (TRACKS=1000, ~4 GB corpus), then training: MODEL BATCH
	$(BIN)/python -m benchmarks pipeline $(if $(TRACKS),--tracks $(TRACKS))
	$(BIN)/python -m benchmarks train --model $(MODEL) $(if $(BATCH),--batch-size $(BATCH)) $(if $(TRACKS),--tracks $(TRACKS))

test: venv ## Run the whole test suite
	$(BIN)/python -m pytest

test-fast: venv ## Run the tests except the slow end-to-end ones
	$(BIN)/python -m pytest -m "not slow"

lint: venv ## Lint and check the formatting of the code (ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## Format the code in place (ruff)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
