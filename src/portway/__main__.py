"""``python -m portway``."""

import sys

from portway.cli import main

sys.exit(main())
