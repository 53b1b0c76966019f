"""LlamaIndex integration for Mixlayer embeddings: ``MixlayerEmbedding`` (in ``base``, as
every LlamaHub package has it).

``llama_index/`` and ``llama_index/embeddings/`` have no ``__init__.py`` (PEP 420 namespace
packages), so this coexists with llama-index-core and every other llama-index package. The
older path, ``llama_index_mixlayer``, still imports the same objects.
"""

from mixlayer_embeddings._extras import require

require("llama-index", "llama_index.core", feature="llama_index.embeddings.mixlayer")

# Imported after the check, so a missing extra says what to install.
from mixlayer_embeddings import __version__  # noqa: E402
from mixlayer_embeddings._exceptions import *  # noqa: E402, F403 - every error of the core
from mixlayer_embeddings._exceptions import __all__ as _errors  # noqa: E402

from .base import MixlayerEmbedding  # noqa: E402
from .events import USAGE_PAYLOAD_KEY, MixlayerUsageEvent  # noqa: E402

__all__ = ["USAGE_PAYLOAD_KEY", "MixlayerEmbedding", "MixlayerUsageEvent", "__version__", *_errors]
