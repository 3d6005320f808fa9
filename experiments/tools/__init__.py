"""User tools: the demo, and what one does with a trained run (sample text, forecast, transcribe)."""
