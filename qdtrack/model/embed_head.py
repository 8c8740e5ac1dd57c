"""The quasi-dense embedding head (reference b, a.6 "Track head init").

Parameter names equal mmtracking's ``track_head.embed_head.*`` keys
(``convs.{i}.conv.weight``, ``convs.{i}.gn.{weight,bias}``, ``fcs.{i}.{weight,bias}``,
``fc_embed.{weight,bias}``), so the released checkpoints load with ``strict=True`` after
stripping the ``track_head.embed_head.`` prefix.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ConvGNReLU", "QuasiDenseEmbedHead"]


class ConvGNReLU(nn.Module):
    """3×3 convolution without bias, GroupNorm and ReLU (mmcv ``ConvModule`` with GN).

    Submodule names ``conv`` and ``gn`` match mmcv's, hence the checkpoint keys.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        num_groups: GroupNorm groups; must divide ``out_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_groups: int) -> None:
        super().__init__()
        if out_channels % num_groups != 0:
            raise ValueError(
                f"GroupNorm needs out_channels ({out_channels}) divisible by "
                f"num_groups ({num_groups})."
            )
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.gn = nn.GroupNorm(num_groups, out_channels, eps=1e-5)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Apply conv → GN → ReLU to (N, C_in, H, W), giving (N, C_out, H, W)."""
        return self.relu(self.gn(self.conv(x)))


class QuasiDenseEmbedHead(nn.Module):
    """Map pooled RoI features to appearance embeddings.

    Reference layout (mmtracking ``QuasiDenseEmbedHead(num_convs=4, num_fcs=1,
    embed_channels=256, norm_cfg=GN(32))``): ``num_convs`` × [3×3 conv → GN → ReLU], flatten
    in (C, H, W) order, ``num_fcs`` × [fc → ReLU], ``fc_embed``. The output is **not**
    L2-normalised; it is used as is for the dot-product loss and for tracking.

    The defaults are the reference's; smaller values give cheap CPU configurations.

    Args:
        in_channels: Channels of the pooled features (FPN width, 256).
        conv_channels: Output channels of each convolution (256).
        num_convs: Number of conv → GN → ReLU blocks (4).
        num_groups: GroupNorm groups (32).
        roi_feat_size: Side of the pooled features (7).
        fc_channels: Width of each hidden fully connected layer (1024).
        num_fcs: Number of hidden fully connected layers (1).
        embed_channels: Embedding size (256).

    Shape:
        Input (N, in_channels, roi_feat_size, roi_feat_size); output (N, embed_channels).
    """

    def __init__(
        self,
        *,
        in_channels: int = 256,
        conv_channels: int = 256,
        num_convs: int = 4,
        num_groups: int = 32,
        roi_feat_size: int = 7,
        fc_channels: int = 1024,
        num_fcs: int = 1,
        embed_channels: int = 256,
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("conv_channels", conv_channels),
            ("roi_feat_size", roi_feat_size),
            ("fc_channels", fc_channels),
            ("embed_channels", embed_channels),
            ("num_groups", num_groups),
        ]:
            if value < 1:
                raise ValueError(f"{name} must be positive; got {value}.")
        if num_convs < 0 or num_fcs < 0:
            raise ValueError(f"num_convs and num_fcs must be >= 0; got {num_convs}, {num_fcs}.")
        self.in_channels = in_channels
        self.roi_feat_size = roi_feat_size
        self.embed_channels = embed_channels

        self.convs = nn.ModuleList(
            ConvGNReLU(in_channels if i == 0 else conv_channels, conv_channels, num_groups)
            for i in range(num_convs)
        )
        channels = conv_channels if num_convs > 0 else in_channels
        flat_dim = channels * roi_feat_size * roi_feat_size
        self.fcs = nn.ModuleList(
            nn.Linear(flat_dim if i == 0 else fc_channels, fc_channels) for i in range(num_fcs)
        )
        self.relu = nn.ReLU(inplace=True)
        self.fc_embed = nn.Linear(fc_channels if num_fcs > 0 else flat_dim, embed_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as the reference (reference a.6).

        Convolutions: Kaiming normal, fan_out, ReLU gain (mmcv ``ConvModule``); GroupNorm
        weight 1, bias 0; hidden Linear layers: Xavier uniform, bias 0; ``fc_embed``:
        Normal(0, 0.01), bias 0.
        """
        for block in self.convs:
            assert isinstance(block, ConvGNReLU)
            nn.init.kaiming_normal_(block.conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.ones_(block.gn.weight)
            nn.init.zeros_(block.gn.bias)
        for fc in self.fcs:
            assert isinstance(fc, nn.Linear)
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_embed.weight, mean=0.0, std=0.01)
        nn.init.zeros_(self.fc_embed.bias)

    def forward(self, roi_features: Tensor) -> Tensor:
        """Embed pooled RoI features.

        Args:
            roi_features: Tensor of shape (N, in_channels, roi_feat_size, roi_feat_size).

        Returns:
            Embeddings of shape (N, embed_channels), not normalised.
        """
        expected = (self.in_channels, self.roi_feat_size, self.roi_feat_size)
        if roi_features.dim() != 4 or tuple(roi_features.shape[1:]) != expected:
            raise ValueError(
                f"roi_features must have shape (N, {', '.join(map(str, expected))}); "
                f"got {tuple(roi_features.shape)}."
            )
        x = roi_features
        for block in self.convs:
            x = block(x)
        x = x.flatten(1)
        for fc in self.fcs:
            x = self.relu(fc(x))
        return self.fc_embed(x)
