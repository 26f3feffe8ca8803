"""numba-jitted cost kernels: plain numbers and arrays in, cycles / bytes / seconds out.

Imports only numpy, numba and math. Every public kernel is listed in `asicsim.kernels.registry` with its
slow pure-Python twin in tests/reference/ (tests/test_kernel_registry.py checks they agree).
"""
