"""SRAM-resident pipelines (Groq LPU, Cerebras WSE-3, SambaNova SN40L): weights in on-chip SRAM spread over many
chips or one wafer, an optional slower external tier for what does not fit, chip-to-chip hops priced per transfer.
Spec kind "sram-pipeline"; `device.DEVICE` implements `asicsim.core.device.Device`."""
