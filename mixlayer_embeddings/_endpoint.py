"""Where requests go and how long an attempt may take: plain data, from which the flow builds
each request itself (no callback into the client, as httpx's auth flow builds its own).

``Endpoint`` is made once per client from its settings and its http client's headers and
timeout; ``Endpoint.request`` is the one place the key is put into a request, and the flow
(``_flow``) blanks it again as soon as the attempt ends, whatever it ended with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._body import Deadline
from ._config import Secret

__all__ = ["Endpoint"]


def _least(limit: float | None, left: float) -> float:
    return left if limit is None else min(limit, left)


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """The embeddings URL, the headers every request carries (the http client's own merged
    with ours, never the key), the key in its ``Secret``, each phase's timeout, and how long
    one attempt may take in all (reading its answer included)."""

    url: httpx.URL
    headers: httpx.Headers
    api_key: Secret
    timeout: httpx.Timeout
    attempt_seconds: float

    @classmethod
    def of(
        cls,
        http: httpx.Client | httpx.AsyncClient,
        *,
        url: httpx.URL,
        headers: Mapping[str, str],
        api_key: Secret,
        timeout: httpx.Timeout | None,
        attempt_seconds: float,
    ) -> Endpoint:
        """As ``http.build_request`` would merge them: its headers under ours, its timeout
        unless the client was given one."""
        merged = httpx.Headers(http.headers)
        merged.update(headers)
        return cls(
            url=url,
            headers=merged,
            api_key=api_key,
            timeout=timeout or http.timeout,
            attempt_seconds=attempt_seconds,
        )

    def request(self, body: Mapping[str, Any], *, seconds_left: float | None) -> httpx.Request:
        """A POST of ``body``; ``seconds_left``: the call's deadline, which no phase of the
        attempt may outlast."""
        timeout = self.timeout
        if seconds_left is not None:
            left = max(0.001, seconds_left)
            timeout = httpx.Timeout(
                connect=_least(timeout.connect, left),
                read=_least(timeout.read, left),
                write=_least(timeout.write, left),
                pool=_least(timeout.pool, left),
            )
        request = httpx.Request(
            "POST",
            self.url,
            json=body,
            headers=self.headers,
            extensions={"timeout": timeout.as_dict()},
        )
        # Set last and held by no local: a traceback formatted with its locals (rich, sentry)
        # then shows only httpx's Headers, whose repr hides this value.
        request.headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return request

    def answer_deadline(
        self,
        sent_at: float,
        call_deadline: float | None,
        call_deadline_at: float | None,
        now: Callable[[], float],
    ) -> Deadline:
        """When an attempt sent at ``sent_at`` must have its whole answer: its own bound, or
        the call's deadline when that comes first."""
        attempt = Deadline(
            sent_at + self.attempt_seconds, self.attempt_seconds, now, "the attempt's deadline"
        )
        if call_deadline_at is not None and call_deadline_at < attempt.at:
            return Deadline(call_deadline_at, call_deadline or 0.0, now, "the call's deadline")
        return attempt
