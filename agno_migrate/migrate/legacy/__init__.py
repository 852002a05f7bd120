"""The Agno 1.x import: SQL tables and MongoDB collections, read in batches, converted in workers."""
