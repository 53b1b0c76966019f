"""What both framework adapters need, written once: a pair of clients and the two mappings.

LangChain's ``MixlayerEmbeddings`` and LlamaIndex's ``MixlayerEmbedding`` each hold one
``AdapterCore`` and map their methods onto ``embed_documents`` / ``embed_query`` (and the
async twins), which send ``input_type="document"`` or ``"query"`` with the shared options.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypedDict

import httpx

from ._client import AsyncMixlayerClient, MixlayerClient, ProgressCallback
from ._config import Secret
from ._validation import check_text, check_texts

__all__ = ["AdapterCore", "EmbedOptions", "progress_bar"]


@dataclass(frozen=True)
class EmbedOptions:
    """Per-call options an adapter fixes at construction."""

    dimensions: int | None = None
    normalize: bool | None = None
    truncate: bool | None = None
    query_input_type: str | None = "query"
    document_input_type: str | None = "document"


class _ClientSettings(TypedDict):
    """What the sync and the async client of an adapter share."""

    api_key: str | Secret | None
    base_url: str | None
    model: str | None
    timeout: float | httpx.Timeout | None
    max_retries: int
    batch_size: int
    max_concurrency: int
    allow_insecure_http: bool


class _CallOptions(TypedDict):
    input_type: str | None
    dimensions: int | None
    normalize: bool | None
    truncate: bool | None


@contextlib.contextmanager
def progress_bar(
    total: int, enabled: bool, desc: str = "Embedding"
) -> Iterator[ProgressCallback | None]:
    """A tqdm bar counting embedded items, or None when off (tqdm is imported only if on)."""
    if not enabled:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            "show_progress_bar=True needs tqdm: pip install 'mixlayer-embeddings[progress]'"
        ) from exc
    with tqdm(total=total, desc=desc, unit="text") as bar:
        yield bar.update


class AdapterCore:
    """Two core clients built once (no network) and the document/query mappings."""

    def __init__(
        self,
        *,
        api_key: str | Secret | None,
        base_url: str | None,
        model: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        batch_size: int,
        max_concurrency: int,
        http_client: httpx.Client | None,
        async_http_client: httpx.AsyncClient | None,
        allow_insecure_http: bool,
        options: EmbedOptions,
    ) -> None:
        settings = _ClientSettings(
            api_key=api_key,
            base_url=base_url,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            allow_insecure_http=allow_insecure_http,
        )
        self.client = MixlayerClient(**settings, http_client=http_client)
        self.async_client = AsyncMixlayerClient(**settings, http_client=async_http_client)
        self.options = options

    def __repr__(self) -> str:
        return f"AdapterCore({self.client!r}, {self.options!r})"

    def _kwargs(self, input_type: str | None) -> _CallOptions:
        o = self.options
        return {
            "input_type": input_type,
            "dimensions": o.dimensions,
            "normalize": o.normalize,
            "truncate": o.truncate,
        }

    def embed_documents(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        with progress_bar(len(checked), show_progress) as on_progress:
            return self.client.embed(
                checked, on_progress=on_progress, **self._kwargs(self.options.document_input_type)
            ).embeddings

    def embed_query(self, text: str) -> list[float]:
        return self.client.embed(
            check_text(text), **self._kwargs(self.options.query_input_type)
        ).embeddings[0]

    async def aembed_documents(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        with progress_bar(len(checked), show_progress) as on_progress:
            response = await self.async_client.embed(
                checked, on_progress=on_progress, **self._kwargs(self.options.document_input_type)
            )
        return response.embeddings

    async def aembed_query(self, text: str) -> list[float]:
        response = await self.async_client.embed(
            check_text(text), **self._kwargs(self.options.query_input_type)
        )
        return response.embeddings[0]

    def close(self) -> None:
        self.client.close()
