"""graphkit: typed node graphs for diffusion models."""

from graphkit.api import Graph, default_scheduler, load
from graphkit.context import NodeInputError, RunContext, RunControl
from graphkit.errors import GraphError, Problem
from graphkit.registry import Param, node, registry
from graphkit.types import Image, ImageEmbeds, Latent, Mask, Prompt, SavedFiles

__version__ = "0.1.0"

__all__ = [
    "Graph", "GraphError", "Image", "ImageEmbeds", "Latent", "Mask", "NodeInputError", "Param",
    "Problem", "Prompt", "RunContext", "RunControl", "SavedFiles", "default_scheduler", "load",
    "node", "registry",
]
