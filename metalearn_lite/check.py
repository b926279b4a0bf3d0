"""``python -m metalearn_lite.check``: is this machine ready for the lessons? (see ``metalearn_lite.environment``)."""

import sys

from .environment import main

if __name__ == "__main__":
    sys.exit(main())
