"""PyTorch reference networks in the published key layouts, written from the architecture descriptions.

Independent implementations that the parity tests (tests/) and the benchmarks (bench/) compare the MindSpore
Cells with, and that the tests use to write checkpoints in the published formats. Never imported by the
library.
"""
