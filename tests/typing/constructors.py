"""Checked by mypy --strict (``make test``), never run: the constructors are visible to type
checkers. Each ``type: ignore`` below must be needed, or mypy reports it unused and fails."""

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding

MixlayerEmbeddings(model="qwen/qwen3-embedding-8b", api_key="k", dimensions=256, timeout=(2, 30))
MixlayerEmbeddings(dimension=256)  # type: ignore[call-arg]
MixlayerEmbeddings(dimensions="256")  # type: ignore[arg-type]
MixlayerEmbedding(model_name="qwen/qwen3-embedding-8b", api_key="k", embed_batch_size=100)
MixlayerEmbedding(model="qwen/qwen3-embedding-8b")  # type: ignore[call-arg]
MixlayerEmbedding(dimensions=[256])  # type: ignore[arg-type]
