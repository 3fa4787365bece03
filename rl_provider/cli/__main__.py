"""``python -m rl_provider.cli``: the same as the ``rl-provider`` console script."""

from __future__ import annotations

import sys

from rl_provider.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
