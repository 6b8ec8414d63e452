"""``python -m dagnb`` is the ``dagnb`` command."""

import sys

from .cli import main

sys.exit(main())
