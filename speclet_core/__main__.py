"""``python -m speclet_core <command>``."""

import sys

from speclet_core.cli import main

sys.exit(main())
