import sys

from myreinflow.cli import main

sys.exit(main())
