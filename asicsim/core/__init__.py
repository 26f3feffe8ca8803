"""The step engine (a simpy discrete-event model of the compute, HBM and link units, `des`, and a direct pass
proven equal to it, the fast path, `engine`), spec loading, device registry, serving loop and metrics."""
