"""Drop-in shims with the method names of other libraries: ``from quiver.compat import hnswlib``."""
