"""Scoring tracker results.

* :mod:`~qdtrack.evaluation.mot`: MOTChallenge with TrackEval (HOTA, MOTA, IDF1...);
* :mod:`~qdtrack.evaluation.tao`: TAO Track AP with TrackEval's TrackMAP;
* :mod:`~qdtrack.evaluation.coco`: COCO box AP with pycocotools;
* :mod:`~qdtrack.evaluation.inputs`: the checked JSON readers TAO and COCO share;
* :mod:`~qdtrack.evaluation.trackeval_run`: TrackEval run quietly in a staging folder;
* :mod:`~qdtrack.evaluation.benchmarks`: the registry of benchmarks and their metrics;
* :mod:`~qdtrack.evaluation.report`: tables, headline numbers, per-row CSV;
* :mod:`~qdtrack.evaluation.stage`: the ``qdtrack evaluate`` command.

The gate rule (criteria and allowed drops) lives in :mod:`qdtrack.gate`.
"""
