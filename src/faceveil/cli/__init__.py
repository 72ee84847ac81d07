"""The `faceveil` command line. Nothing below `faceveil.cli` is imported by the library."""
