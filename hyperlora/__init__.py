"""hyperlora: turn an alignment prompt (a manifesto) into LoRA weights in one hypernetwork forward pass."""

from .adapter import Adapter
from .base import load_base
from .config import HyperNetConfig
from .errors import HyperLoRAError
from .generator import HyperLoRA

__version__ = "0.1.0"
__all__ = ["Adapter", "HyperLoRA", "HyperLoRAError", "HyperNetConfig", "load_base"]
