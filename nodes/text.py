"""Text prompt node."""

from typing import Annotated

from graphkit import Param, Prompt, node


@node("text.prompt", title="Prompt", category="text", version="1.0.0")
def text_prompt(
    text: Annotated[str, Param(max_length=4000, description="What to draw.")] = "",
    negative: Annotated[str, Param(max_length=4000, description="What to avoid.")] = "",
) -> Prompt:
    """A prompt and its negative prompt, for any text-conditioned node."""
    return Prompt(text=text, negative=negative)
