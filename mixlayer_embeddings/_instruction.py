"""Task instructions for queries (Qwen3 Embedding is instruction-aware).

The model card of Qwen3-Embedding puts a query as ``Instruct: {task}\\nQuery:{query}`` (no
space after ``Query:``) and a document with no instruction; its authors measure 1-5% better
retrieval with an instruction than without, and a task-specific one beats a generic one. The
service applies its own query prompt for ``input_type="query"``; the reference says to omit
``input_type`` "when you do not want a model-specific prompt applied". So an instructed query
is the formatted text, sent with ``input_type`` left out; documents are never instructed.
"""

from __future__ import annotations

from ._exceptions import InvalidParameterError

__all__ = [
    "INSTRUCTION_FORMAT",
    "bulk_input_type",
    "check_instruction",
    "instruct_item",
    "instructed",
]

#: Qwen3-Embedding's query format, character for character (its model card's
#: ``get_detailed_instruct``).
INSTRUCTION_FORMAT = "Instruct: {instruction}\nQuery:{text}"


def check_instruction(
    instruction: object,
    input_type: object,
    *,
    param: str = "instruction",
    input_type_param: str = "input_type",
) -> None:
    """Refuse an instruction that is not a non-blank string, or one given for documents."""
    if instruction is None:
        return
    if not isinstance(instruction, str) or not instruction.strip():
        shown = repr(instruction) if isinstance(instruction, str) else type(instruction).__name__
        raise InvalidParameterError(
            f"{param} must be a non-empty string describing the task (for example 'Given a "
            f"web search query, retrieve relevant passages that answer the query'), or None; "
            f"got {shown}",
            param=param,
        )
    if input_type == "document":
        raise InvalidParameterError(
            f"{param} is for queries: Qwen3 Embedding embeds documents without an instruction. "
            f"Leave {param} unset for documents, or set {input_type_param} to 'query' or None.",
            param=param,
        )


def instructed(instruction: str, text: str) -> str:
    """``text`` as an instructed query."""
    return INSTRUCTION_FORMAT.format(instruction=instruction, text=text)


def instruct_item(instruction: str, index: int, item: object) -> str:
    """Item ``index`` of a call as an instructed query; token ids cannot take an instruction."""
    if not isinstance(item, str):
        raise InvalidParameterError(
            f"an instruction applies to texts; item {index} is token ids, which cannot be "
            "given one (pass the text, or leave instruction unset)",
            param="instruction",
        )
    return instructed(instruction, item)


def bulk_input_type(instruction: object) -> str:
    """The ``input_type`` a bulk front end (``mixlayer-embed``, Ray) sends when not told one:
    ``"document"`` for a corpus, ``"query"`` for texts given an instruction (a query log, a
    question set), which are then sent with none (the instruction is their prompt)."""
    return "document" if instruction is None else "query"
