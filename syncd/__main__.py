"""``python -m syncd`` is the ``syncd`` command."""

import sys

from syncd.cli.main import main

sys.exit(main())
