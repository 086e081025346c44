"""`python -m app` is the `holds` command."""

import sys

from app.cli import main

sys.exit(main())
