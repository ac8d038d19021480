"""``python -m gui [SOURCE] [detector options]`` starts the viewer."""

import os
import signal
import sys

# Until the viewer takes Ctrl-C over (first thing in ``main``), it ends start-up quietly.
signal.signal(signal.SIGINT, lambda *_: (os.write(2, b"drivevision: interrupted\n"),
                                         os._exit(130)))

from gui.app import main  # noqa: E402

sys.exit(main())
