import sys

from eventtally.cli import main

sys.exit(main())
