"""``python -m drivevision.cli``: the ``drivevision`` command."""

import os
import signal
import sys

# Until the command takes Ctrl-C over (first thing in ``main``), it ends start-up quietly.
signal.signal(signal.SIGINT, lambda *_: (os.write(2, b"drivevision: interrupted\n"),
                                         os._exit(130)))

from drivevision.cli import main  # noqa: E402

sys.exit(main())
