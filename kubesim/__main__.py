"""``python -m kubesim``: see :mod:`kubesim.runner`."""

import sys

from kubesim.runner import main

sys.exit(main())
