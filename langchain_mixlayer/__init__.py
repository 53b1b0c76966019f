"""LangChain integration for Mixlayer embeddings: ``MixlayerEmbeddings``."""

from mixlayer_embeddings._extras import require

require("langchain", "langchain_core", feature="langchain_mixlayer")

# Imported after the check, so a missing extra says what to install.
from mixlayer_embeddings import __version__  # noqa: E402
from mixlayer_embeddings._exceptions import *  # noqa: E402, F403 - every error of the core
from mixlayer_embeddings._exceptions import __all__ as _errors  # noqa: E402

from .embeddings import MixlayerEmbeddings  # noqa: E402

__all__ = ["MixlayerEmbeddings", "__version__", *_errors]
