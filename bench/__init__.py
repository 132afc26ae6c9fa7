"""Tracking benchmark (host only): EN 50530 static and dynamic efficiency, partial shade and real days, our
firmware against a faithful reimplementation of the original FUGU firmware's tracker, on the simulated board.

``python -m bench`` runs every case and rewrites BENCHMARKS.md and bench/results.json; ``--quick`` runs a
shortened set and fails (exit 1) when our tracker is below the floors in bench/cases.py. See bench/__main__.py.
"""
