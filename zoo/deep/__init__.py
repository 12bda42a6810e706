"""The absurdly deep residual core (seed `003`): exact chunk-checkpointed SGD, XLA kernels,
in-memory or streamed weights, and a Keras layer."""

from zoo.deep.core import DeepNetwork
from zoo.deep.kernels import ACTIVATIONS, ChunkKernels
from zoo.deep.layer import DeepResidualCore
from zoo.deep.storage import FileWeights, InMemoryWeights, TornFileError

__all__ = ["ACTIVATIONS", "ChunkKernels", "DeepNetwork", "DeepResidualCore", "FileWeights", "InMemoryWeights", "TornFileError"]
