"""automod: deep automodulators (Heljakka et al., NeurIPS 2020) as a toolkit."""

__version__ = "0.2.0"
