"""``python -m autodag``: the command line."""

from autodag.cli import main

raise SystemExit(main())
