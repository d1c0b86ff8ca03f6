"""What every part of the toolkit shares: model directories (model_dir), process settings (runtime), atomic
file writes (files) and the entry points' error reporting (cli). Imports no deep-learning framework."""
