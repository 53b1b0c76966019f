"""The older import path of ``llama_index.embeddings.mixlayer``, kept so code written for it
still runs: the same objects, not copies."""

from llama_index.embeddings.mixlayer import *  # noqa: F403 - the whole public surface
from llama_index.embeddings.mixlayer import __all__ as __all__
from llama_index.embeddings.mixlayer import __version__ as __version__
