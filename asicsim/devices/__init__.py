"""Device packages beyond the ASIC (`asicsim.chip`) and the GPU (`asicsim.gpusim`): one subpackage per spec `kind`
(registered in `asicsim.core.registry.DEVICE_KINDS`), each implementing `asicsim.core.device.Device`."""
