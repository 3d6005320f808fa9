"""User tools: the demo, and what one does with a trained run (sample, forecast, transcribe)."""
