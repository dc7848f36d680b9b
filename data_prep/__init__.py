"""Dataset preparation: sources, alignment, multi-resolution HDF5 files and their reader."""
