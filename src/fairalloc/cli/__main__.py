"""``python -m fairalloc.cli``: the same as the ``fairalloc`` command."""

import sys

from fairalloc.cli import main

sys.exit(main())
