"""Training: one loop for every stage (autoencoder, rectified flow, ARC), resumable and DDP-ready."""
