"""ptft: fine-tune every pre-training checkpoint of a causal LM, evaluate before and after, analyse."""

__version__ = "0.1.0"
