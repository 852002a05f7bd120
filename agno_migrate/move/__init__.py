"""Moving a whole Agno database: between backends (copy), and through a file (export, import)."""
