"""Moving a whole Agno database: ``copy`` (any backend to any backend, at head) and ``verify``;
``export`` and ``import_`` (through a JSON Lines file, ``jsonl``).

``source`` reads a database read-only as head rows (through the upgrade's conversions), ``sink``
writes a target at head in bulk with checkpoints, ``copy`` and ``verify`` are the commands;
``tables`` copies the other Agno table types (memories, evals, ...), the target created at head in its
own layout, the source only read.
"""
