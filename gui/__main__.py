"""``python -m gui [SOURCE] [detector options]`` starts the viewer."""

import sys

from gui.app import main

sys.exit(main())
