"""Tables of schema `bundler`."""
