"""LlamaIndex integration for Mixlayer embeddings: ``MixlayerEmbedding``.

Also importable the LlamaIndex way: ``from llama_index.embeddings.mixlayer import
MixlayerEmbedding``.
"""

from mixlayer_embeddings._extras import require

require("llama-index", "llama_index.core", feature="llama_index_mixlayer")

# Imported after the check, so a missing extra says what to install.
from mixlayer_embeddings import __version__  # noqa: E402
from mixlayer_embeddings._exceptions import *  # noqa: E402, F403 - every error of the core
from mixlayer_embeddings._exceptions import __all__ as _errors  # noqa: E402

from .base import MixlayerEmbedding  # noqa: E402
from .events import USAGE_PAYLOAD_KEY, MixlayerUsageEvent  # noqa: E402

__all__ = ["USAGE_PAYLOAD_KEY", "MixlayerEmbedding", "MixlayerUsageEvent", "__version__", *_errors]
