"""``python -m musicperf`` runs the command-line interface."""

import sys

from musicperf.cli import main

sys.exit(main())
