"""``python -m hiermodels`` runs the ``hiermodels`` command."""

import sys

from hiermodels.cli import main

sys.exit(main())
