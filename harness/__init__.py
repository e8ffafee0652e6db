"""Load and soak testing harness for the Genesys Cloud Web Messaging Guest API."""

__version__ = "0.1.0"
