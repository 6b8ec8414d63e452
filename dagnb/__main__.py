"""``python -m dagnb`` is the ``dagnb`` command."""

import sys

from dagnb.ci.cli import main

sys.exit(main())
