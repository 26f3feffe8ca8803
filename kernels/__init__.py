"""numba-jitted cost kernels: plain numbers and arrays in, cycles / bytes / seconds out.

Imports only numpy, numba and math. Every kernel has a slow pure-Python twin in tests/reference/.
"""
