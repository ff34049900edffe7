# The two commands a newcomer needs: `make demo` and `make test`. Each installs into .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make bench BENCH_ARGS=--quick` for 20 s excerpts; the default is pianist.avi in full, 3D-CNN pairs 3 times (medians).
BENCH_ARGS ?= --repeats 3

.PHONY: install browser demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,landmarks,analysis,distributed]'
	touch $(STAMP)

# The HTML review report is tested in a real headless browser (Debian's chromium). Installed when
# missing and possible (root with apt-get); the browser test skips with a reason otherwise.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser test will be skipped"; }

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m musicperf demo -o demo-output --overwrite

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The comparisons need Debian's ffmpeg and the Musical Gestures Toolbox (in its own .venv/mgt).
bench: $(STAMP)
	sh benchmarks/setup.sh
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) demo-output bench-results.json
