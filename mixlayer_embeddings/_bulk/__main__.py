"""``python -m mixlayer_embeddings._bulk``: the ``mixlayer-embed`` command."""

from .command import main

raise SystemExit(main())
