"""selfsup trainer core: self-supervised pretraining of text encoders and ONNX export."""

__version__ = "0.1.0"
