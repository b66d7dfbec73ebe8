"""`python -m bot serve` runs the service (as `fits-bot serve`); anything else is the CLI."""

import sys

if sys.argv[1:2] == ["serve"]:
    from bot.serve import main as serve_main

    sys.exit(serve_main(sys.argv[1:]))

from bot.cli import main

sys.exit(main())
