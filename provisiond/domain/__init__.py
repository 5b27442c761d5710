"""Pure domain rules and value types. Nothing in this package performs I/O."""
