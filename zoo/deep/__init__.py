"""The absurdly deep residual core (seed `003`): exact chunk-checkpointed SGD, native or XLA
kernels, in-memory or streamed crash-safe weights, and a Keras layer."""

from zoo.deep.core import DeepNetwork, initial_head, pack_record, record_capacity, unpack_record
from zoo.deep.initialisation import init_layers
from zoo.deep.kernels import ACTIVATIONS, ChunkKernels, select_kernels
from zoo.deep.layer import DeepResidualCore
from zoo.deep.memory import InMemoryWeights
from zoo.deep.weights_file import FileWeights

__all__ = [
    "ACTIVATIONS",
    "ChunkKernels",
    "DeepNetwork",
    "DeepResidualCore",
    "FileWeights",
    "InMemoryWeights",
    "init_layers",
    "initial_head",
    "pack_record",
    "record_capacity",
    "select_kernels",
    "unpack_record",
]
