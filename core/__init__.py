"""The small core shared by the API (``app``) and the workers (``workers``): settings, storage,
job records and queue names. Nothing here imports torch or the models."""
