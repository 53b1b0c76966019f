"""The service's usage on LlamaIndex's own paths: an instrumentation event, and a key of the
callback's end payload.

LlamaIndex's ``TokenCountingHandler`` counts embedding tokens with its own tokenizer, from the
chunks' text. The service's count (Qwen's tokenizer, what you are billed) reaches an event
handler as ``MixlayerUsageEvent`` (after each ``EmbeddingEndEvent``), and a callback handler
as ``payload["mixlayer_usage"]`` of the ``EMBEDDING`` event's end.
"""

from __future__ import annotations

from llama_index.core.instrumentation.events import BaseEvent

from mixlayer_embeddings._usage import UsageTracker

__all__ = ["USAGE_PAYLOAD_KEY", "MixlayerUsageEvent"]

#: The key of the ``EMBEDDING`` callback event's end payload holding the call's usage.
USAGE_PAYLOAD_KEY = "mixlayer_usage"


class MixlayerUsageEvent(BaseEvent):
    """One embedding call's usage, as the service reported it."""

    model_name: str
    prompt_tokens: int
    total_tokens: int
    requests: int
    retries: int
    rate_limited: int

    @classmethod
    def class_name(cls) -> str:
        return "MixlayerUsageEvent"

    @classmethod
    def of(cls, model_name: str, usage: UsageTracker) -> MixlayerUsageEvent:
        return cls(
            model_name=model_name,
            prompt_tokens=usage.prompt_tokens,
            total_tokens=usage.total_tokens,
            requests=usage.requests,
            retries=usage.retries,
            rate_limited=usage.rate_limited,
        )
