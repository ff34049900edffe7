# The two commands a newcomer needs: `make demo` and `make test`. Each installs into .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make bench BENCH_ARGS=--quick` for 20 s excerpts; the default is pianist.avi in full, 3D-CNN pairs 3 times (medians).
BENCH_ARGS ?= --repeats 3

# `make figures` regenerates the demo's table in README.md (about a minute); the long benchmarks'
# figures only when named: `make figures FIGURES_ARGS="vibrato bench-cnn"` (block names; `all` for
# every one, several hours). See docs/development.md.
FIGURES_ARGS ?=

.PHONY: install browser demo test bench docs figures clean

# Installing says what it does: each step is announced, and pip shows the packages it collects,
# downloads (with progress bars) and installs. The first install takes a few minutes (PyTorch
# alone is several hundred MB); later runs skip it until pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating the virtual environment $(VENV) ($(PYTHON))"; $(PYTHON) -m venv $(VENV); }
	@echo "==> updating pip in $(VENV)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> installing musicperf with the extras dev, landmarks, analysis, distributed (first time: several minutes, mostly PyTorch)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev,landmarks,analysis,distributed]'
	@touch $(STAMP)
	@echo "==> installed: $$($(BIN)/python -m musicperf --version)"

# The HTML review report is tested in a real headless browser (Debian's chromium). Installed when
# missing and possible (root with apt-get); the browser tests skip with a reason otherwise.
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "==> chromium found: $$(chromium --version 2>/dev/null | head -1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing Debian's chromium for the browser tests (apt-get, about 100 MB)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "==> chromium could not be installed: the browser tests will be skipped"; \
	else echo "==> chromium not installed (needs root and apt-get): the browser tests will be skipped"; fi

install: $(STAMP)

demo: $(STAMP)
	@echo "==> running the demo into demo-output/"
	$(BIN)/python -m musicperf demo -o demo-output --overwrite

test: $(STAMP) browser
	@echo "==> running the test suite"
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The comparisons need Debian's ffmpeg and the Musical Gestures Toolbox (in its own .venv/mgt).
bench: $(STAMP)
	sh benchmarks/setup.sh
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

# Figures in the docs written by the programs that measure them, never typed: each command below
# replaces one `<!-- figures:NAME -->` block (benchmarks/docs_blocks.py), under a line naming the
# command, the machine and the time. An unknown name stops before anything runs.
FIGURES_LONG := vibrato duets-separation-dynamics-seeds-1-2 duets-separation-plain-seeds-1-2 \
  duets-separation-dynamics-seeds-3-4 duets-separation-plain-seeds-3-4 duets-separation-dynamics-seeds-13-14 \
  duets-separation-plain-seeds-13-14 duets-playing+figure2+association-plain-seeds-1-2 tasks8-instrument \
  tasks8-memory bench-cnn bench-landmarks vibrato-real-loo-vote labelling-real-summary labelling-real-40
figures: $(STAMP)
	@names="$(if $(filter all,$(FIGURES_ARGS)),$(FIGURES_LONG),$(FIGURES_ARGS))"; \
	for f in $$names; do case " $(FIGURES_LONG) " in *" $$f "*) ;; \
	  *) echo "make figures: unknown figures block '$$f' in FIGURES_ARGS (one of: all $(FIGURES_LONG))"; exit 2;; esac; done
	@echo "==> the demo's table in README.md (runs the demo in a temporary folder, about a minute)"
	$(BIN)/python benchmarks/demo_figures.py
	@set -e; names="$(if $(filter all,$(FIGURES_ARGS)),$(FIGURES_LONG),$(FIGURES_ARGS))"; \
	for f in $$names; do \
	  case "$$f" in \
	    vibrato) cmd="benchmarks/bench_analyses.py";; \
	    duets-separation-dynamics-seeds-1-2) cmd="benchmarks/bench_duets.py --seeds 1,2 --only separation --motion-dynamics";; \
	    duets-separation-plain-seeds-1-2) cmd="benchmarks/bench_duets.py --seeds 1,2 --only separation";; \
	    duets-separation-dynamics-seeds-3-4) cmd="benchmarks/bench_duets.py --seeds 3,4 --only separation --motion-dynamics";; \
	    duets-separation-plain-seeds-3-4) cmd="benchmarks/bench_duets.py --seeds 3,4 --only separation";; \
	    duets-separation-dynamics-seeds-13-14) cmd="benchmarks/bench_duets.py --seeds 13,14 --only separation --motion-dynamics";; \
	    duets-separation-plain-seeds-13-14) cmd="benchmarks/bench_duets.py --seeds 13,14 --only separation";; \
	    duets-playing+figure2+association-plain-seeds-1-2) cmd="benchmarks/bench_duets.py --only playing,figure2,association";; \
	    tasks8-instrument) cmd="benchmarks/bench_tasks8.py --task instrument";; \
	    tasks8-memory) cmd="benchmarks/bench_tasks8.py --task memory --sets 8,40";; \
	    bench-cnn) cmd="benchmarks/run_all.py --only cnn --repeats 3";; \
	    bench-landmarks) cmd="benchmarks/run_all.py --only landmarks --repeats 2";; \
	    vibrato-real-loo-vote) cmd="benchmarks/bench_vibrato_real.py --quick --loo";; \
	    labelling-real-summary) cmd="benchmarks/bench_real_labelling.py --spans";; \
	    labelling-real-40) cmd="benchmarks/bench_real_labelling.py --fractions 0.4 --readme";; \
	  esac; \
	  echo "==> figures block $$f: $(BIN)/python $$cmd --write-docs"; $(BIN)/python $$cmd --write-docs; \
	done

# The docs/ pages as a website (mkdocs, installed into .venv on first use; pure Python, from PyPI).
docs: $(STAMP)
	@$(BIN)/python -c "import mkdocs" 2>/dev/null || { echo "==> installing mkdocs 1.6.1 into $(VENV)"; \
	  $(BIN)/python -m pip install --progress-bar on 'mkdocs==1.6.1'; }
	@echo "==> building the documentation into build/site/ (open build/site/index.html)"
	$(BIN)/python -m mkdocs build

clean:
	rm -rf $(VENV) demo-output bench-results.json build/site
