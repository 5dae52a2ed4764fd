"""``python -m simulator``: the ``sgdsim`` command line (``cli.py``), exactly as installed.

``python -m`` puts the current directory first on ``sys.path``; a ``cli.py`` of the user's
own there must not stand in for sgdsim's, so it is taken off the path before the import.
"""

import os
import sys

if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())] or sys.path
    from cli import main

    sys.exit(main())
