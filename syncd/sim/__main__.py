"""``python -m syncd.sim``: see :mod:`syncd.sim.runner`."""

import sys

from syncd.sim.runner import main

sys.exit(main())
