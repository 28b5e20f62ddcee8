# Beyond Transformers — every set-up step lives here, so a fresh clone needs only
#   make serve   (install, build the book, serve book + dashboard)
#   make test    (install, run the whole suite, browser tests included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5006
BOOK_PORT ?= 8000
HOST   ?= 127.0.0.1
# Pinned for local and CI installs (a CPU wheel); the package itself asks only torch>=2.1 so Colab keeps its own.
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?=
# Extra options for the dashboard server, e.g. DASHBOARD_ARGS="--public-host class.example.org --num-procs 2".
DASHBOARD_ARGS ?=

.PHONY: install book instructor student student-notebooks static dashboard serve test test-fast smoke gpu-check gpu-race bench sync clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[book,apps,dev]"
	# torchscale (the official RetNet code, for a cross-check) without its deps: timm would pull a torchvision
	# that pins another torch, and the retention component the tests import needs only torch.
	$(BIN)/python -m pip install -q --no-deps "torchscale==0.3.0"
	@touch $@

# plotly.js (and postlib/viz/static/postlib-figures.js) served from the site itself (no CDN).
static: install
	@$(BIN)/python -c "from postlib.book import install_static; install_static('_static')"

# Executes every chapter (a failing cell fails the build) and writes _build/html.
book: static
	POSTLIB_BOOK_BUILD=1 $(BIN)/jupyter-book build . --all --warningiserror --keep-going

# The instructor edition is the book itself: solutions folded, the instructor guide and answer keys.
instructor: book

# The student edition: the notebooks the book build executed, minus the solution cells, rendered with
# execution off (nothing runs twice); runs `make book` first only when those notebooks are stale.
student: static
	@$(BIN)/python -m postlib.exercises student --check || \
	  (echo "student/ notebooks are stale: run make student-notebooks and commit them" && exit 1)
	@$(BIN)/python -m postlib.exercises student-book --out _build/student > /dev/null || $(MAKE) book
	$(BIN)/python -m postlib.exercises student-book --out _build/student
	$(BIN)/jupyter-book build _build/student --all --warningiserror --keep-going
	@echo "Student edition: _build/student/_build/html/index.html"

# Regenerate the committed solution-free notebooks (what the student book's Colab buttons open).
student-notebooks: install
	$(BIN)/python -m postlib.exercises student

dashboard: install
	$(BIN)/python -m apps.serve --port $(PORT) --address $(HOST) $(DASHBOARD_ARGS)

serve: book
	@echo "Book:      http://$(HOST):$(BOOK_PORT)/"
	@echo "Dashboard: http://$(HOST):$(PORT)/dashboard"
	@$(BIN)/python -m http.server $(BOOK_PORT) --bind $(HOST) --directory _build/html > /dev/null 2>&1 & \
	  trap "kill $$! 2>/dev/null" EXIT INT TERM; \
	  $(BIN)/python -m apps.serve --port $(PORT) --address $(HOST) $(DASHBOARD_ARGS)

test: install static
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# Unit tests only (no book build, no browser).
test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not book and not browser" $(PYTEST_ARGS)

# Regenerate every page's first cell (the Colab install cell) from _config.yml's repository.url and
# keep each chapter's .md and its output-free Colab .ipynb in sync (intro included).
sync: install
	$(BIN)/python -m postlib.book sync
	$(BIN)/python -m postlib.exercises student

# Every page of the book with the GPU size profile forced, then without Triton (smoke counts; part of make test).
smoke: install
	$(BIN)/python -m postlib.book run --mode smoke

bench: install
	$(BIN)/python -m postlib.bench --help

# Runs on a CUDA machine from the source tree, with no install step (torch, triton, numpy present), in
# under 5 minutes: the kernel checks first (correctness and timings, about 1-2 minutes), then the scaling
# race (its own 150 s budget). GPU_RESULTS is where both files go: on a lent machine whose outputs come back
# only from one folder, `make gpu-check GPU_RESULTS=$$OUT`, then copy them into postlib/bench/results/.
GPU_RESULTS ?= postlib/bench/results
gpu-check:
	@mkdir -p $(GPU_RESULTS)
	PYTHONPATH=. $(PYTHON) -m postlib.kernels.gpu_check --out $(GPU_RESULTS)/gpu_check.json; status=$$?; \
	  PYTHONPATH=. $(PYTHON) -m postlib.bench race --device cuda --quiet --out $(GPU_RESULTS)/gpu_race.json; \
	  exit $$status

# The scaling race on the GPU alone (chapters/07_lab/race.md plots it when the file exists).
gpu-race:
	@mkdir -p $(GPU_RESULTS)
	PYTHONPATH=. $(PYTHON) -m postlib.bench race --device cuda --out $(GPU_RESULTS)/gpu_race.json

clean:
	rm -rf _build .pytest_cache
