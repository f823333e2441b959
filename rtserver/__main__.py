"""``python -m rtserver``."""

import sys

from rtserver.cli import main

sys.exit(main())
