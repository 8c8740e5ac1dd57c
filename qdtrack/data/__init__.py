"""Dataset readers and writers (MOTChallenge, CrowdHuman, frame sources, synthetic data)."""
