"""One module per CLI command group; each only parses, calls the core and reports."""
