"""Ward alarm gateway: staff panic buttons to the security desk and the police hotline."""

__version__ = "0.1.0"
