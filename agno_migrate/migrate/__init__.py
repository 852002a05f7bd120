"""The engine that moves a database between schema versions (see DESIGN.md, "The house")."""
