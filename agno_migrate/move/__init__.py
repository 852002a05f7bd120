"""Copying a whole Agno database from one backend to another (``agno-migrate copy``): the target
created at head in its own layout, the source only read."""
