# Modern CNNs. `make book` and `make test` are all a newcomer needs; both create .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Absolute, because notebook kernels run in their own folders.
export BOOK_DATA_DIR := $(abspath $(or $(BOOK_DATA_DIR),$(wildcard ../shared/data)))

.PHONY: book test lab chapters grade release bench gpu-check serve clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e . 2>/dev/null || \
		$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

site/node_modules/.package-lock.json: site/package.json site/package-lock.json
	npm ci --prefix site --no-audit --no-fund --loglevel=error

book: $(STAMP) site/node_modules/.package-lock.json  ## build the HTML book into _build/html (never trains)
	$(BIN)/python site/collect.py
	$(BIN)/jupyter-book build . -W -n --keep-going

test: book  ## the whole test suite (it checks the built site too), then every chapter top to bottom (smoke profile)
	$(BIN)/python -m pytest tests
	BOOK_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
		-p no:cacheprovider chapters

lab: $(STAMP)  ## JupyterLab on the homework
	$(BIN)/jupyter lab homework/

chapters: $(STAMP)  ## re-execute the chapters whose code or book/ changed (FORCE=1: all), in the machine's profile, storing real outputs
	$(BIN)/python -m book.notebooks $(if $(FORCE),--force) chapters/*.ipynb

release: $(STAMP)  ## write the student notebooks into homework/ from autograder/source/
	$(BIN)/python -m autograder release

grade: $(STAMP)  ## grade submissions in the sandbox: make grade HW=hw1_alexnet SUBMISSIONS=path/ OUT=grades/ [SOURCE=dir]
	$(BIN)/python -m autograder grade $(HW) $(SUBMISSIONS) --out $(OUT) $(if $(SOURCE),--source $(SOURCE)) --workers 3

bench: $(STAMP)  ## benchmarks: pipeline, grading, CPU speed-ups on both ISAs, the cpu recipe against its predecessor, time to accuracy against D2L (~35 min)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/grade_throughput.py
	$(BIN)/python benchmarks/cpu_speed.py
	$(BIN)/python benchmarks/cpu_recipe.py
	$(BIN)/python benchmarks/time_to_accuracy.py

# The GPU machine has its own torch and no registry, so this target needs no venv: python3 is used if .venv is absent.
gpu-check:  ## the gpu profile on a GPU (benchmarks/gpu_check.py, <= 8 min); ARGS=--dry-run checks it on a CPU
	PYTHONPATH=. $(if $(wildcard $(BIN)/python),$(BIN)/python,python3) benchmarks/gpu_check.py \
		$(if $(wildcard .gpu-data/manifest.json),--data .gpu-data) $(ARGS)

serve: ## serve the built book on http://localhost:8000
	$(BIN)/python -m http.server --directory _build/html 8000

clean:
	rm -rf _build
