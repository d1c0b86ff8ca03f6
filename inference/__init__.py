"""Running trained or converted generators on user images (used by test.py and demo.py)."""
