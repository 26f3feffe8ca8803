"""Workload description as data: model configs, per-step operator graphs, request traces.

Imports no simulator: everything here is plain data plus the arithmetic that counts FLOPs and bytes.
"""
