"""The networks: autoencoder, conditioners, DiT, and the assembled text-to-audio model."""
