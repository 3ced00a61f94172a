"""Training and evaluation data: clean source images and their simulated degradations."""
