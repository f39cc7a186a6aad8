import sys

from hil.rig.cli import main

sys.exit(main())
