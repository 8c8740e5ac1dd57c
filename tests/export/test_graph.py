"""The exported module in eager PyTorch: same preprocessing and detections as ``predict``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qdtrack.config import QDTrackConfig
from qdtrack.export.contract import MAX_DETECTIONS
from qdtrack.export.graph import ExportableQDTrack, pad_rows, pad_to_divisor
from qdtrack.model.preprocess import batch_images, normalize_image
from qdtrack.model.qdtrack import QDTrack
from qdtrack.resize import resize_frame

from .conftest import detecting_model


@pytest.mark.parametrize(("height", "width"), [(90, 160), (64, 96), (160, 107), (33, 31)])
def test_pad_to_divisor_is_batch_images_for_one_image(height: int, width: int) -> None:
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    ours = pad_to_divisor(normalize_image(image))
    torch.testing.assert_close(ours, batch_images([image]).tensor[0], rtol=0, atol=0)


def test_pad_rows_appends_zero_rows() -> None:
    rows = torch.arange(6.0).reshape(3, 2)
    padded = pad_rows(rows, 5)
    assert padded.shape == (5, 2)
    torch.testing.assert_close(padded[:3], rows)
    assert not padded[3:].any()
    assert pad_rows(rows[:0], 4).shape == (4, 2)


def test_eager_wrapper_gives_predict_detections(torch_model: QDTrack) -> None:
    frame = np.random.default_rng(3).integers(0, 256, (224, 384, 3), dtype=np.uint8)
    (expected,) = torch_model.predict([frame])
    image, scale_factor = resize_frame(frame, torch_model.detector.img_scale)
    with torch.no_grad():
        boxes, scores, labels, embeddings, count = ExportableQDTrack(torch_model)(
            torch.from_numpy(image)
        )
    n = int(count[0])
    assert count.dtype == torch.int32 and boxes.shape == (MAX_DETECTIONS, 4)
    assert n == len(expected) > 0
    np.testing.assert_allclose(boxes[:n].numpy() / scale_factor, expected.boxes_xyxy, rtol=1e-5)
    np.testing.assert_array_equal(scores[:n].numpy(), expected.scores)
    np.testing.assert_array_equal(labels[:n].numpy(), expected.labels)
    assert expected.embeddings is not None
    np.testing.assert_allclose(embeddings[:n].numpy(), expected.embeddings, atol=1e-5)
    assert not boxes[n:].any() and not embeddings[n:].any()


def test_wrapper_refuses_outputs_smaller_than_the_box_head_keeps(
    tiny_config: QDTrackConfig,
) -> None:
    with pytest.raises(ValueError, match="keeps up to 100"):
        ExportableQDTrack(detecting_model(tiny_config), max_detections=50)
