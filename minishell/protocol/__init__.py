"""Wire protocols, sans-IO: codecs that turn bytes into values and back, with no trio."""
