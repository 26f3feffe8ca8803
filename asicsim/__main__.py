import sys

from asicsim.cli import main

sys.exit(main())
