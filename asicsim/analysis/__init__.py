"""Analyses built on runs: validation against published measurements, per-step time breakdowns."""
