"""Tables of schema `arvo_adapter`."""
