"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), with the paper's features as options."""

from __future__ import annotations

import torch
from torch import nn

from .init import he_init
from . import naming
from .spec import Compared, Spec, register


# The paper's local response normalisation (§3.3): b_i = a_i / (k + α Σ_j a_j²)^β, the
# sum over n = 5 adjacent channels, with k = 2, α = 1e-4, β = 0.75. PyTorch's
# LocalResponseNorm (like Caffe's) divides its alpha by n, so the paper's α is passed as
# α·n = 5e-4.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0


def local_response_norm() -> nn.LocalResponseNorm:
    """AlexNet's LRN with the paper's constants (§3.3); VGG's A-LRN and GoogLeNet reuse it."""
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K)


def _scaled(channels: int, width: float, groups: int) -> int:
    """Channels times ``width``, kept a multiple of ``groups`` so that the towers stay equal."""
    return max(groups, round(channels * width / groups) * groups)


class AlexNet(nn.Module):
    """Five convolutions and three fully connected layers (§3.5, Figure 2).

    - ``towers=2`` splits conv2, conv4 and conv5 into two groups, as the two GPUs did;
      conv3 and the FC layers see both towers (§3.2). The two-tower form has 60,965,224
      parameters.
    - ``lrn`` adds local response normalisation after conv1 and conv2 (§3.3's constants:
      2 added, 5 adjacent maps, α=1e-4, β=0.75).
    - ``overlap`` pools 3×3 with stride 2 instead of 2×2 with stride 2 (§3.4).
    - ``dropout`` zeroes outputs of the first two FC layers with this probability (0.5
      in §4.2).
    - ``activation`` "relu" (§3.1) or "tanh", for the paper's Figure 1 comparison.
    - ``stem="small"`` replaces the 11×11/4 first convolution with a 3×3/1 one, for
      28–64 px images.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *,
                 width: float = 1.0, towers: int = 2, lrn: bool = True,
                 overlap: bool = True, dropout: float = 0.5, activation: str = "relu",
                 stem: str = "imagenet", hidden: int = 4096, pool_size: int = 6):
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        c1, c2, c3, c4, c5 = (_scaled(c, width, towers)
                              for c in (96, 256, 384, 384, 256))
        pool = (lambda: nn.MaxPool2d(3, 2)) if overlap else (lambda: nn.MaxPool2d(2, 2))
        norm = local_response_norm if lrn else nn.Identity
        first = (nn.Conv2d(in_channels, c1, 11, stride=4, padding=2)
                 if stem == "imagenet"
                 else nn.Conv2d(in_channels, c1, 3, stride=1, padding=1))
        self.features = nn.Sequential(
            first, act(), norm(), pool(),
            nn.Conv2d(c1, c2, 5, padding=2, groups=towers), act(), norm(), pool(),
            nn.Conv2d(c2, c3, 3, padding=1), act(),  # conv3 reads both towers
            nn.Conv2d(c3, c4, 3, padding=1, groups=towers), act(),
            nn.Conv2d(c4, c5, 3, padding=1, groups=towers), act(), pool(),
        )
        # identity at 224 px; lets other sizes in
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        hidden = max(1, round(hidden * width))
        self.classifier = nn.Sequential(  # dropout on the outputs of fc6 and fc7 (§4.2)
            nn.Flatten(),
            nn.Linear(c5 * pool_size * pool_size, hidden), act(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), act(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

        # Each activation gets its standard initialisation (He et al. 2015 for ReLU,
        # Glorot & Bengio 2010 for tanh), so that a comparison of the two measures the
        # non-linearity and not a poor start. (The paper drew every weight from
        # N(0, 0.01²) and set some biases to 1, which it says "accelerates the early
        # stages of learning" (§5).)
        if activation == "relu":
            he_init(self)
        else:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_normal_(m.weight,
                                           gain=nn.init.calculate_gain("tanh"))
                    nn.init.zeros_(m.bias)


    def layer_names(self) -> dict[str, str]:
        """conv1…conv5, then fc6…fc8, as in Caffe's released model:
        {module path: name}."""
        return naming.caffe([(f"{part}.{k}", m) for part in ("features", "classifier")
                             for k, m in getattr(self, part).named_children()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


def figure1_cnn(activation: str = "relu", num_classes: int = 10,
                in_channels: int = 3) -> nn.Sequential:
    """A four-layer network for the paper's Figure 1 (ReLU against tanh, CIFAR-10, 25%
    training error).

    The paper does not give the network; this follows cuda-convnet's
    four-layer CIFAR-10 example (layers-18pct.cfg): three 5×5 convolutions of 32, 32 and
    64 channels, 3×3/2 pooling after each (max after the first, average after the
    others), and one fully connected layer, for 32 px images. Its response normalisation
    is left out, and nothing regularises (Figure 1's caption). The paper does not say
    how Figure 1's network was initialised: every weight here starts from N(0, 0.01²),
    its ImageNet network's initialisation (§5), and every bias from 0.
    """
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    net = nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2), act(),
        nn.MaxPool2d(3, 2, padding=1),                                  # 32 -> 16
        nn.Conv2d(32, 32, 5, padding=2), act(),
        nn.AvgPool2d(3, 2, padding=1),                                  # 16 -> 8
        nn.Conv2d(32, 64, 5, padding=2), act(),
        nn.AvgPool2d(3, 2, padding=1),                                  # 8 -> 4
        nn.Flatten(), nn.Linear(64 * 4 * 4, num_classes),
    )
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return net


def paper_table():
    """Our parameter count of the two-tower network beside the paper's "60 million" (§3,
    abstract)."""
    from .. import papers
    from ..summary import Table, count

    table = Table(["model", "params (ours)", "params (paper)", "macs (ours)"],
                  title="AlexNet, §3 (two towers)")
    ours = count(AlexNet(), (1, 3, 224, 224))
    table.rows.append(["alexnet", ours["params"], papers.ALEXNET_PARAMS, ours["macs"]])
    return table


SPEC = register(Spec(
    family="alexnet", chapter="01_alexnet", model_class=AlexNet, diagram_depth=2,
    paper_table=paper_table,
    builders={"alexnet": AlexNet},
    small={"alexnet": (32, dict(width=0.25, stem="small", pool_size=3, lrn=False))},
    cpu=dict(epochs=2, batch_size=128, lr=0.03),
    gpu=dict(resolution=224, epochs=10, batch_size=128, lr=0.01),
    compared=(Compared("AlexNet", "alexnet", "alexnet", trained=True),),
))
