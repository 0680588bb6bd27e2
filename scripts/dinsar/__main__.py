"""``python -m dinsar``: the same as the ``dinsar`` command."""

import sys

from .cli import main

sys.exit(main())
