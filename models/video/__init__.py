"""Video: streamed clips (PyAV), a noise classifier and a motion-compensated temporal denoiser."""
