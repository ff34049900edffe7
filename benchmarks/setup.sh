#!/bin/sh
# What `make bench` needs beyond musicperf's own environment (idempotent; each step skipped when done):
#  - the `ffmpeg` program (the 3D-ResNets-PyTorch reference extracts JPEGs with it; the Musical
#    Gestures Toolbox pipes frames through it), from apt when running as root;
#  - the Musical Gestures Toolbox 1.32 in its own virtualenv .venv/mgt (it needs numpy 2,
#    musicperf numpy < 2). Benchmarks that lack either are skipped with a reason.
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if ! command -v ffmpeg >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null) \
      || echo "setup.sh: could not install ffmpeg: reference and MGT benchmarks will be skipped"
  else
    echo "setup.sh: ffmpeg missing and not root: reference and MGT benchmarks will be skipped"
  fi
fi
if [ ! -x .venv/mgt/bin/python ] || ! .venv/mgt/bin/python -c "import musicalgestures" >/dev/null 2>&1; then
  ($PY -m venv .venv/mgt && .venv/mgt/bin/python -m pip install --quiet musicalgestures==1.32.0) \
    || echo "setup.sh: could not install musicalgestures: the MGT comparison will be skipped"
fi
