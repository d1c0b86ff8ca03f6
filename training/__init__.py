"""The training engine: one shared GAN step and loop (engine.py), data pipelines, checkpoints, families."""
