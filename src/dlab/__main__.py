import sys

from dlab.cli import main

sys.exit(main())
