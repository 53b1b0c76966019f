"""LangChain integration for Mixlayer embeddings: ``MixlayerEmbeddings``."""

from mixlayer_embeddings import __version__
from mixlayer_embeddings._exceptions import *  # noqa: F403 - every error of the core, re-exported
from mixlayer_embeddings._exceptions import __all__ as _errors

from .embeddings import MixlayerEmbeddings

__all__ = ["MixlayerEmbeddings", "__version__", *_errors]
