"""The clients of one adapter object and the mapping both frameworks share: documents go as
``document_input_type``, questions as ``query_input_type``; every call is counted in the
object's usage."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from .._client import AsyncMixlayerClient, MixlayerClient, ProgressCallback
from .._usage import UsageTracker, tracking
from .._validation import check_text, check_texts
from .settings import AdapterSettings, ClientRecipe

__all__ = ["AdapterClients", "progress_bar"]


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
        try:
            yield bar.update
        except BaseException:
            # A failed call's half-drawn bar is wiped, so the error is what stays on screen.
            bar.leave = False
            raise


class AdapterClients:
    """The clients of one adapter object, built on first use for the settings of that call.

    Thread-safe: concurrent calls with the same settings share one client (and so one
    ``max_concurrency``). A client replaced because settings changed is not closed under a
    call still using it: it is closed when the last call lets go of it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: tuple[ClientRecipe, MixlayerClient] | None = None
        self._async: tuple[ClientRecipe, AsyncMixlayerClient] | None = None
        #: Every call of this adapter object, whichever client made it.
        self.usage = UsageTracker()
        #: The last call to finish.
        self.last_usage = UsageTracker()

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        """One call: its usage goes to this object's totals, to its ``last_usage``, and to
        every ``track_usage`` block open around it."""
        call = UsageTracker()
        with tracking(self.usage), tracking(call):
            yield
        self.last_usage = call

    def __repr__(self) -> str:
        built = [c for c in (self._sync, self._async) if c is not None]
        return f"AdapterClients({', '.join(repr(client) for _, client in built)})"

    def sync_client(self, settings: ClientRecipe) -> MixlayerClient:
        with self._lock:
            if self._sync is None or self._sync[0] != settings:
                self._sync = (settings, settings.sync_client())
            return self._sync[1]

    def async_client(self, settings: ClientRecipe) -> AsyncMixlayerClient:
        with self._lock:
            if self._async is None or self._async[0] != settings:
                if self._async is not None:
                    self._async[1]._release()
                self._async = (settings, settings.async_client())
            return self._async[1]

    # -- the mapping: documents as "document", questions as "query" --------------------------

    def embed_documents(
        self, s: AdapterSettings, texts: Sequence[str], *, show_progress: bool = False
    ) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        client = self.sync_client(s.client)
        with self._counted(), progress_bar(len(checked), show_progress) as on_progress:
            return client.embed_with_options(
                checked, s.document_options(), on_progress=on_progress
            ).embeddings

    def embed_query(self, s: AdapterSettings, text: str) -> list[float]:
        client = self.sync_client(s.client)
        with self._counted():
            return client.embed_with_options(check_text(text), s.query_options()).embeddings[0]

    async def aembed_documents(
        self, s: AdapterSettings, texts: Sequence[str], *, show_progress: bool = False
    ) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        client = self.async_client(s.client)
        with self._counted(), progress_bar(len(checked), show_progress) as on_progress:
            response = await client.embed_with_options(
                checked, s.document_options(), on_progress=on_progress
            )
        return response.embeddings

    async def aembed_query(self, s: AdapterSettings, text: str) -> list[float]:
        client = self.async_client(s.client)
        with self._counted():
            response = await client.embed_with_options(check_text(text), s.query_options())
        return response.embeddings[0]

    # -- lifecycle -----------------------------------------------------------------------------

    def _take(self) -> tuple[MixlayerClient | None, AsyncMixlayerClient | None]:
        """Hand over the clients (and forget them): the next call builds new ones."""
        with self._lock:
            sync, async_ = self._sync, self._async
            self._sync = self._async = None
        if sync is not None:
            sync[1].close()
        return (sync[1] if sync else None), (async_[1] if async_ else None)

    def close(self) -> None:
        """Close the pools this adapter opened (an injected http client is left to its owner)."""
        _, client = self._take()
        if client is not None:
            client._release()

    async def aclose(self) -> None:
        _, client = self._take()
        if client is None:
            return
        if client._bound_to_running_loop():
            await client.aclose()
        else:
            client._release()
