"""edgessl: self-supervised pretraining of tiny vision encoders, down to int8 firmware."""

__version__ = "0.1.0"
