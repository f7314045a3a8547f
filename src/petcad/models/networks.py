"""The 2.5D networks: ``wang2017``, ``multiview``, ``alexnet`` and ``hybrid``.

Every network takes a batch of 2.5D patches ``x`` of shape ``(n, C, N, N)``
(float32, normalised per patch and channel; channel order CT-axial, CT-coronal,
CT-sagittal, PET-axial, PET-coronal, PET-sagittal, optionally 3 mask channels)
and, for ``hybrid``, a standardised diagnostic feature matrix ``f`` of shape
``(n, F)``. ``forward`` returns logits ``(n, 2)`` (column 1 = malignant; softmax
gives probabilities; ``n_classes`` columns in general, one per label of the run's
label set, see :mod:`petcad.models.labels`) and ``embed`` returns the penultimate layer (the "deep
features" fed to an SVM or random forest in the original study).

All networks derive from :class:`PatchNet`; the exact layers and parameter
counts are tabulated in docs/models.md.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

LEAK = 0.01  # negative slope of every Leaky ReLU


class PatchNet(nn.Module):
    """Base class: ``embed(x, f)`` -> penultimate features, ``head`` -> logits.

    Subclasses set ``name``, ``in_channels``, ``patch_size``, ``n_features``
    (diagnostic features expected, 0 for image-only networks) and
    ``embed_dim``.
    """

    name: str = ""
    in_channels: int = 6
    patch_size: int = 51
    n_features: int = 0
    embed_dim: int = 0
    n_classes: int = 2

    def embed(self, x: torch.Tensor, f: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, f: torch.Tensor | None = None, with_embedding: bool = False):
        """Logits ``(n, n_classes)``; with ``with_embedding`` the pair (logits, penultimate features), one pass
        (training with an embedding loss, through DistributedDataParallel's forward)."""
        z = self.embed(x, f)
        logits = self.head(z)
        return (logits, z) if with_embedding else logits

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] != self.patch_size or x.shape[3] != self.patch_size:
            raise ValueError(
                f"{self.name}: expected patches (n, {self.in_channels}, {self.patch_size}, {self.patch_size}), "
                f"got {tuple(x.shape)}"
            )

    def reset_parameters(self) -> None:
        """He (Kaiming) normal initialisation for the Leaky-ReLU layers, zero biases.

        The output layer (no activation after it) gets N(0, 0.01^2) weights so that
        the initial softmax is near uniform (as Caffe's LeNet classifier).
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=LEAK, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        head = getattr(self, "head", None)
        if isinstance(head, nn.Linear):
            nn.init.normal_(head.weight, std=0.01)


def _act() -> nn.Module:
    return nn.LeakyReLU(LEAK)


class Wang2017Net(PatchNet):
    """Reconstruction of the original study's CNN (the poster gives no layers).

    A LeNet-like network of the 2016 era (Caffe's LeNet widths 20-50-500) on the
    6 x 51 x 51 input: conv 5x5 (20) - max-pool 2 - conv 5x5 (50) - max-pool 2 -
    fully connected 500 - dropout - fully connected 2, Leaky ReLU after each hidden
    layer, He initialisation. Trained with softmax cross-entropy, L2 weight decay
    and SGD with momentum (see :class:`petcad.models.estimator.CNNClassifier`).
    ``dropout`` (drop probability before the output layer, as in Caffe's
    reference networks of the time; 0 turns it off) is petcad's choice: the
    poster does not say.
    """

    name = "wang2017"

    def __init__(self, in_channels: int = 6, patch_size: int = 51, hidden: int = 500, dropout: float = 0.5,
                 n_classes: int = 2):
        super().__init__()
        self.in_channels, self.patch_size, self.n_classes = in_channels, patch_size, n_classes
        self.features = nn.Sequential(
            # max-pool before the Leaky ReLU: identical result (both are monotone), 4x fewer activations
            nn.Conv2d(in_channels, 20, 5), nn.MaxPool2d(2), _act(),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), _act(),
        )
        s = ((patch_size - 4) // 2 - 4) // 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(50 * s * s, hidden), _act(), nn.Dropout(dropout))
        self.embed_dim = hidden
        self.head = nn.Linear(hidden, n_classes)
        self.reset_parameters()

    def embed(self, x, f=None):
        self._check(x)
        return self.fc(self.features(x))


class _Stream(nn.Module):
    """One plane's fully convolutional stream: 2 x 51 x 51 -> 128 x 1 x 1.

    Valid convolutions only and 2x2 max-pools on even sizes, so no pixel is
    dropped and no padding enters: 51 -conv4-> 48 -pool-> 24 -conv5-> 20
    -pool-> 10 -conv3-> 8 -pool-> 4 -conv4-> 1.
    """

    # (out_channels, kernel) of the four convolutions; a 2x2 max-pool follows the first three
    LAYERS = ((16, 4), (32, 5), (64, 3), (128, 4))

    def __init__(self, in_channels: int = 2):
        super().__init__()
        convs, c = [], in_channels
        for out, k in self.LAYERS:
            convs.append(nn.Conv2d(c, out, k))
            c = out
        self.convs = nn.ModuleList(convs)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for idx, conv in enumerate(self.convs):
            x = conv(x)
            if idx < len(self.convs) - 1:
                x = F.max_pool2d(x, 2)  # before the Leaky ReLU: same result, fewer activations
            x = F.leaky_relu(x, LEAK)
        return x

    def dense(self, image: torch.Tensor) -> torch.Tensor:
        """Exact dense evaluation over a whole 2D image (a-trous / filter dilation).

        ``image`` ``(n, 2, H, W)`` -> ``(n, 128, H - 50, W - 50)`` where output
        pixel ``(r, c)`` equals ``forward`` on the 51 x 51 window whose top-left
        corner is ``(r, c)``: each stride-2 pool becomes a stride-1 pool and the
        following kernels are dilated by the accumulated stride, so every window
        sees exactly the pooling grid it would see as a patch.
        """
        x, d = image, 1
        for idx, conv in enumerate(self.convs):
            x = F.leaky_relu(F.conv2d(x, conv.weight, conv.bias, dilation=d), LEAK)
            if idx < len(self.convs) - 1:
                x = F.max_pool2d(x, kernel_size=2, stride=1, dilation=d)
                d *= 2
        return x


class MultiViewNet(PatchNet):
    """One fully convolutional stream per plane, weights shared across planes.

    Plane p (axial, coronal, sagittal) gives the stream a 2-channel image (CT and
    PET of that plane). The same stream weights process all three planes (a
    plane's identity is kept by its position in the fused vector); the three
    128-d outputs are concatenated (384) and fused by two 1x1 layers
    (384 -> 128 -> dropout -> 2). Because the streams are fully convolutional with valid
    convolutions, :meth:`dense_planes` evaluates them exactly at every pixel of
    whole slices, and :meth:`fuse_dense` applies the fusion per voxel.
    """

    name = "multiview"

    def __init__(self, in_channels: int = 6, patch_size: int = 51, hidden: int = 128, dropout: float = 0.5,
                 n_classes: int = 2):
        super().__init__()
        self.n_classes = n_classes
        if patch_size != 51:
            raise ValueError("multiview: the stream is designed for 51 x 51 patches")
        if in_channels not in (6, 9):
            raise ValueError("multiview: needs 6 (CT+PET) or 9 (with mask) channels")
        self.in_channels, self.patch_size = in_channels, patch_size
        self.per_plane = in_channels // 3
        self.stream = _Stream(self.per_plane)
        self.fuse = nn.Sequential(nn.Linear(3 * self.stream.out_channels, hidden), _act(), nn.Dropout(dropout))
        self.embed_dim = hidden
        self.head = nn.Linear(hidden, n_classes)
        self.reset_parameters()

    def plane_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C, N, N) -> (3, n, C/3, N, N): plane p gets channels p, p+3 (, p+6)."""
        n = x.shape[0]
        # channel c = modality * 3 + plane
        return x.view(n, self.per_plane, 3, *x.shape[2:]).transpose(1, 2).transpose(0, 1)

    def embed(self, x, f=None):
        self._check(x)
        n = x.shape[0]
        planes = self.plane_inputs(x).reshape(3 * n, self.per_plane, *x.shape[2:])
        s = self.stream(planes).reshape(3, n, -1)  # (3, n, 128)
        return self.fuse(s.transpose(0, 1).reshape(n, -1))

    def dense_planes(self, image: torch.Tensor) -> torch.Tensor:
        """Stream features at every 51 x 51 window of 2-channel slices (see :meth:`_Stream.dense`)."""
        return self.stream.dense(image)

    def fuse_dense(self, axial: torch.Tensor, coronal: torch.Tensor, sagittal: torch.Tensor) -> torch.Tensor:
        """Per-voxel logits from the three planes' dense stream features.

        Each argument is ``(..., 128)`` for the same voxels; returns ``(..., n_classes)``.
        """
        return self.head(self.fuse(torch.cat([axial, coronal, sagittal], dim=-1)))


class AlexNet25D(PatchNet):
    """AlexNet-style network on patches upsampled to 227 x 227 (bilinear, inside the model).

    The torchvision AlexNet layout (so a user-supplied AlexNet state dict loads
    by name into the matching layers) with ``in_channels`` input channels:
    conv 11x11/4 (64) - pool 3/2 - conv 5x5 (192) - pool 3/2 - conv 3x3 (384)
    - conv 3x3 (256) - conv 3x3 (256) - pool 3/2 - dropout - fc 4096 - dropout
    - fc 4096 - fc 2, Leaky ReLU activations.
    """

    name = "alexnet"

    def __init__(self, in_channels: int = 6, patch_size: int = 51, dropout: float = 0.5, width: int = 4096,
                 n_classes: int = 2):
        super().__init__()
        self.in_channels, self.patch_size, self.n_classes = in_channels, patch_size, n_classes
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), _act(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), _act(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), _act(),
            nn.Conv2d(384, 256, 3, padding=1), _act(),
            nn.Conv2d(256, 256, 3, padding=1), _act(), nn.MaxPool2d(3, 2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, width), _act(),
            nn.Dropout(dropout), nn.Linear(width, width), _act(),
        )
        self.embed_dim = width
        self.head = nn.Linear(width, n_classes)
        self.reset_parameters()

    def embed(self, x, f=None):
        self._check(x)
        x = F.interpolate(x, size=(227, 227), mode="bilinear", align_corners=False)
        return self.classifier(torch.flatten(self.features(x), 1))


class HybridNet(PatchNet):
    """``wang2017``'s image trunk with standardised diagnostic features joined before the classifier.

    image -> Wang2017 trunk (500, with its dropout) ; concat the ``n_features``
    standardised features -> fc 64 (Leaky ReLU) -> fc 2. The features must be standardised
    with training statistics (the estimator stores them in the checkpoint).
    """

    name = "hybrid"

    def __init__(self, in_channels: int = 6, patch_size: int = 51, n_features: int = 13, hidden: int = 64,
                 dropout: float = 0.5, n_classes: int = 2):
        super().__init__()
        self.n_classes = n_classes
        if n_features < 1:
            raise ValueError("hybrid: needs at least one diagnostic feature")
        self.in_channels, self.patch_size, self.n_features = in_channels, patch_size, n_features
        self.trunk = Wang2017Net(in_channels, patch_size, dropout=dropout)
        del self.trunk.head
        self.joint = nn.Sequential(nn.Linear(self.trunk.embed_dim + n_features, hidden), _act())
        self.embed_dim = hidden
        self.head = nn.Linear(hidden, n_classes)
        self.reset_parameters()

    def embed(self, x, f=None):
        if f is None or f.ndim != 2 or f.shape[1] != self.n_features:
            got = None if f is None else tuple(f.shape)
            raise ValueError(f"hybrid: expected features (n, {self.n_features}), got {got}")
        return self.joint(torch.cat([self.trunk.embed(x), f], dim=1))
