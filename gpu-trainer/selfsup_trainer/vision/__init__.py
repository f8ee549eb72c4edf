"""Image support: decoding and preprocessing shared with the edge, encoders and objectives."""
