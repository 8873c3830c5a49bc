# make demo: train a small model on the bundled dump and print where its report is.
# make test: run the test suite.
# Both create .venv on first use. TORCH selects the torch build when .venv is
# created: the default pins a CPU-friendly version; for a CUDA build on a GPU
# machine, run `rm -rf .venv && make venv TORCH=torch` first.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean-data

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	LUIGI_CONFIG_PATH=configs/cpu.cfg $(BIN)/luigi --module tasks TrainWikiModel --lang en --local-scheduler
	@echo "Report:"
	@LUIGI_CONFIG_PATH=configs/cpu.cfg $(BIN)/python -m tasks report-path --lang en

test: $(STAMP)
	$(BIN)/python -m pytest

clean-data:
	rm -rf data
