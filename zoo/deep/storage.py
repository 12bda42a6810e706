"""Where the core's `L` layers live: in memory (`zoo.deep.memory`), or in a crash-safe,
checksummed file streamed chunk by chunk (`zoo.deep.weights_file`, format in
`zoo.deep.weights_format`). This module gathers their names in one place."""

from zoo.deep.buffers import ALIGNMENT, aligned_empty, as_tensor
from zoo.deep.initialisation import init_layers
from zoo.deep.memory import InMemoryWeights
from zoo.deep.weights_file import FileWeights
from zoo.deep.weights_format import DATA_OFFSET, SLOT_OFFSETS, VERSION

__all__ = [
    "ALIGNMENT",
    "DATA_OFFSET",
    "FileWeights",
    "InMemoryWeights",
    "SLOT_OFFSETS",
    "VERSION",
    "aligned_empty",
    "as_tensor",
    "init_layers",
]
