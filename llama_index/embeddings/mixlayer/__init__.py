"""``llama_index.embeddings.mixlayer``: the LlamaIndex import path of ``llama_index_mixlayer``.

``llama_index/`` and ``llama_index/embeddings/`` have no ``__init__.py`` (PEP 420 namespace
packages), so this coexists with llama-index-core and every other llama-index package.
"""

from llama_index_mixlayer import USAGE_PAYLOAD_KEY as USAGE_PAYLOAD_KEY
from llama_index_mixlayer import MixlayerEmbedding as MixlayerEmbedding
from llama_index_mixlayer import MixlayerUsageEvent as MixlayerUsageEvent
from llama_index_mixlayer import __all__ as __all__
from llama_index_mixlayer import __version__ as __version__
from mixlayer_embeddings._exceptions import *  # noqa: F403 - every error of the core, re-exported
