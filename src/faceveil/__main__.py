"""``python -m faceveil``."""

import sys

from faceveil.cli.main import main

sys.exit(main())
