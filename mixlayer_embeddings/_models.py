"""The values a call returns."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EmbeddingResponse", "Usage"]


@dataclass(frozen=True)
class Usage:
    """Tokens the service counted, summed over every request a call made."""

    prompt_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens, self.total_tokens + other.total_tokens
        )


@dataclass(frozen=True)
class EmbeddingResponse:
    """One vector per input item, in input order (``embeddings[i]`` belongs to ``input[i]``)."""

    embeddings: list[list[float]]
    model: str
    usage: Usage = field(default_factory=Usage)
    #: How many HTTP requests answered successfully to make this response (retries not counted).
    requests: int = 0

    def __repr__(self) -> str:
        dims = len(self.embeddings[0]) if self.embeddings else 0
        return (
            f"EmbeddingResponse(embeddings=<{len(self.embeddings)} x {dims}>, "
            f"model={self.model!r}, usage={self.usage!r}, requests={self.requests})"
        )
