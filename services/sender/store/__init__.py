"""Tables of schema `sender`."""
