"""``python -m clef_sdk``: the ``clef`` command."""

from .cli import main

raise SystemExit(main())
