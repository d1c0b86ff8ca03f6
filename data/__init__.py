"""Reading training and inference data: the one image reader (images), dataset layouts on disk (folders),
CelebA's attribute data (celeba), and the deterministic, resumable training pipelines (pipelines)."""
