"""Serving: the tracking sidecar beside Triton, the local PyTriton server and the stream client."""
