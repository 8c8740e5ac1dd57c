"""Running the model and a tracker over frames, and the files that come out.

* :mod:`~qdtrack.inference.detections_file`: the one reader/writer of the per-frame
  detections file (``frames.json``: boxes, scores, labels, embeddings) that ``track``
  writes and ``associate`` reads;
* :mod:`~qdtrack.inference.loop`: the tracking loop over a video, an image folder or a
  sequence, and loading a checkpoint for it;
* :mod:`~qdtrack.inference.tao_writer`: tracks and detections in the TAO / COCO result
  formats (MOTChallenge text results: :func:`qdtrack.data.mot.write_mot_results`);
* :mod:`~qdtrack.inference.validation`: tracking a whole validation set (MOT or TAO);
* :mod:`~qdtrack.inference.commands`: ``qdtrack track`` and ``qdtrack track-val``.
"""
