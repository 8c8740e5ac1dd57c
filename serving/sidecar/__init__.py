"""The tracking sidecar: one tracker per video stream beside a stateless Triton model.

Frames come in over HTTP, detections and embeddings come from Triton, ids come from a
``QuasiDenseTracker`` per stream whose state is snapshotted to Redis after every frame.
"""
