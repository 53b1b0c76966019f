"""``llama_index.embeddings.mixlayer``: the LlamaIndex import path of ``llama_index_mixlayer``.

``llama_index/`` and ``llama_index/embeddings/`` have no ``__init__.py`` (PEP 420 namespace
packages), so this coexists with llama-index-core and every other llama-index package.
"""

from llama_index_mixlayer import *  # noqa: F403 - re-export the whole public surface
from llama_index_mixlayer import __all__ as __all__
