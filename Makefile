# pvp-plan: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= outputs/demo

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Runtime install (DICOM codecs and export, no GUI).
$(VENV)/.installed-run: pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dicom-codecs,dicom-export]"
	touch $@

# Everything the test suite needs (napari, Dask, notebooks, pytest plugins).
$(VENV)/.installed-dev: pyproject.toml $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-run

## make demo: set up and run the full plan on the bundled sample data.
demo: $(VENV)/.installed-run
	$(BIN)/pvp-plan demo --out $(OUT)

## make test: set up (pip + apt packages for headless napari) and run the whole suite under Xvfb.
test: $(VENV)/.installed-dev
	bash scripts/install_system_packages.sh
	QT_API=pyqt5 $(BIN)/python -m pytest --nbmake --nbmake-timeout=300 tests notebooks

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check pvp_plan plugins tests benchmarks

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
