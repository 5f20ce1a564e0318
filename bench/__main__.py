"""``python -m bench``: the scale benchmark (bench/scale.py)."""

from __future__ import annotations

import sys

from bench.scale import main

sys.exit(main())
