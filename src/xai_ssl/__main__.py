"""``python -m xai_ssl demo ...``: the ``xai-ssl`` command."""

import sys

from xai_ssl.cli import main

sys.exit(main())
