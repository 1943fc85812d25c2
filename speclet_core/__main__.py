"""``python -m speclet_core <command>``."""

import sys

from speclet_core.cli.main import main

sys.exit(main())
