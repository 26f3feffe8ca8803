"""Rack-scale systems (`kind = "system"`): a rack or pod of one chip spec, with its scale-up domain, the host power
its trays add per chip, its scale-out network and the facility it sits in. The chip's own device prices every op;
the system says how the chips are built into a deployment (`asicsim.core.cluster`)."""
