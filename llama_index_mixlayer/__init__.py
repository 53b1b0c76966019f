"""LlamaIndex integration for Mixlayer embeddings: ``MixlayerEmbedding``.

Also importable the LlamaIndex way: ``from llama_index.embeddings.mixlayer import
MixlayerEmbedding``.
"""

from mixlayer_embeddings import __version__
from mixlayer_embeddings._exceptions import *  # noqa: F403 - every error of the core, re-exported
from mixlayer_embeddings._exceptions import __all__ as _errors

from .base import MixlayerEmbedding

__all__ = ["MixlayerEmbedding", "__version__", *_errors]
