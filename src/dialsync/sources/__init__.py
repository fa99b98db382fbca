"""Where contacts come from."""
