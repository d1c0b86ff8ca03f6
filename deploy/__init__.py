"""Deployment: export to ONNX / MINDIR (exporter.py, portable.py, signatures.py) and the ONNX runner for test.py."""
