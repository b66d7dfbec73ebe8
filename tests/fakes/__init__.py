"""Fake servers for the platforms fits talks to (the Hugging Face Hub, ...)."""
