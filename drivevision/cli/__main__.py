import sys

from drivevision.cli import main

sys.exit(main())
