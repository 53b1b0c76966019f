"""What ``mixlayer-embed`` tells a user whose run failed for good: what to fix, and a rerun
only where one can help (no answer, a 5xx, a 429, Ctrl-C), never where the same command
would fail the same way."""

from __future__ import annotations

from .._config import API_KEY_ENV, BASE_URL_ENV, MODEL_ENV
from .._exceptions import (
    APIConnectionError,
    AuthenticationError,
    InternalServerError,
    MixlayerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
)

__all__ = ["advice"]


def advice(error: MixlayerError, rows_written: int, folder: object, base_url: str) -> str:
    """The line after the error's own: what to do next."""
    kept = f"{rows_written} rows are written in {folder}"
    if isinstance(error, APIConnectionError | InternalServerError | RateLimitError):
        return f"{kept}; run the same command again to continue from there."
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return (
            f"{kept}. The service at {base_url} refused the key: check {API_KEY_ENV} (and "
            f"{BASE_URL_ENV}), then run the same command to continue."
        )
    if isinstance(error, NotFoundError):
        return (
            f"{kept}. {base_url} has no such model or path: check --model ({MODEL_ENV}) and "
            f"--base-url ({BASE_URL_ENV}), then run the command to continue."
        )
    if isinstance(error, ResponseValidationError):
        return (
            f"{kept}; nothing untrusted was written. The service's answers changed shape "
            "(pass --dimensions to fix the vectors' width), or it is not the Mixlayer API."
        )
    return f"{kept}; fix what the line above names, then run the command to continue."
