"""xai-ssl: explain self-supervised vision encoders and measure the explanations."""

__version__ = "0.1.0"
