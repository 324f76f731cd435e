"""kalamfuzz: a model-based stateful fuzz tester for KalamDB."""

__version__ = "0.1.0"
