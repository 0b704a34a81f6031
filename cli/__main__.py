"""``python -m cli``: the same as the ``initproof`` command."""

from ._main import main

raise SystemExit(main())
