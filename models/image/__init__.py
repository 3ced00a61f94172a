"""Single frames (png, tif, jpg, 2-D npy): noise classification and denoising."""
