"""``python -m odenet.cli``: the same as the ``odenet`` console script."""
import sys

from odenet.cli import main

sys.exit(main())
