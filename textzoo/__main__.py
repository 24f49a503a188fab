import sys

from textzoo.cli import main

sys.exit(main())
