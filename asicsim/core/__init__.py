"""The simpy discrete-event engine, spec loading, device registry, serving loop and metrics."""
