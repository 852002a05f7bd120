"""The MongoDB side of the migration flow: state document and lease lock, detection, steps."""
