"""The papers' own numbers, as printed in their tables, to set beside what our code measures."""

from __future__ import annotations

from dataclasses import dataclass

# Krizhevsky et al. 2012, abstract and §4 (its opening sentence): "60 million
# parameters"; the two-tower network of Figure 2.
ALEXNET_PARAMS = 60_000_000

# Simonyan & Zisserman 2015, Table 2: parameters in millions per configuration.
VGG_PARAMS_M = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
VGG_NAMES = {"A": "vgg11", "A-LRN": "vgg11_lrn", "B": "vgg13", "C": "vgg16_c", "D": "vgg16", "E": "vgg19"}

# Szegedy et al. 2015, Table 1: params and ops (multiply-adds) per row; 28×28, 14×14 and 7×7 inputs.
GOOGLENET_ROWS = {
    "3a": (159e3, 128e6), "3b": (380e3, 304e6),
    "4a": (364e3, 73e6), "4b": (437e3, 88e6), "4c": (463e3, 100e6), "4d": (580e3, 119e6), "4e": (840e3, 170e6),
    "5a": (1072e3, 54e6), "5b": (1388e3, 71e6),
}
GOOGLENET_INPUT = {"3a": (192, 28), "3b": (256, 28), "4a": (480, 14), "4b": (512, 14), "4c": (512, 14),
                   "4d": (512, 14), "4e": (528, 14), "5a": (832, 7), "5b": (832, 7)}
# The first row of Table 1 (convolution 7×7/2, 64 channels, 112×112 output) prints 2.7K params and
# 34M ops. The two agree with each other (2.7K·112·112 = 34M) but fit no input: a colour input gives
# 7·7·3·64 = 9,408 weights (118M multiply-adds at 112×112), a one-channel input 7·7·64 = 3,136.
GOOGLENET_CONV1 = (2.7e3, 34e6)

# He et al. 2016, Table 1: FLOPs, which the paper counts as multiply-adds, in billions.
RESNET_GMACS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}

# Huang et al. 2017 give the ImageNet DenseNets' sizes only roughly, as points of Figure
# 3 and in §4.4 ("DenseNet-201 with 20M parameters"); their Table 2, which lists
# parameters, is for CIFAR and SVHN. DenseNet-161 (k=48) is in the CVPR 2017 version's
# Table 1 and in the authors' repository (liuzhuang13/DenseNet), released with the
# ImageNet results; arXiv v5 (2018) lists DenseNet-264 in its place. These are the exact
# counts of the released ImageNet models.
DENSENET_PARAMS = {"densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
                   "densenet161": 28_681_000}

# Dosovitskiy et al. 2021, Table 1: ViT-Base has 86M parameters.
VIT_BASE_PARAMS = 86_000_000
# Table 1 in full: layers, hidden size D, MLP size, heads, parameters. The main results
# use patches of 16 (Base, Large) and 14 (Huge) at 224 px, which is how we count them.
VIT_TABLE1 = {"ViT-Base": (12, 768, 3072, 12, 86e6), "ViT-Large": (24, 1024, 4096, 16, 307e6),
              "ViT-Huge": (32, 1280, 5120, 16, 632e6)}
VIT_PATCH = {"ViT-Base": 16, "ViT-Large": 16, "ViT-Huge": 14}
# The paper gives no multiply-adds; torchvision's model table lists 17.56 GFLOPS for
# vit_b_16 at 224 px, counting a multiply-add as one operation.
VIT_B16_GMACS_TORCHVISION = 17.56

# Dai et al. 2021, Table 4 (ImageNet-1K only, 224 px): parameters, FLOPs (multiply-adds) and top-1.
COATNET_TABLE4 = {"CoAtNet-0": (25e6, 4.2e9, 81.6), "CoAtNet-1": (42e6, 8.4e9, 83.3),
                  "CoAtNet-2": (75e6, 15.7e9, 84.1), "CoAtNet-3": (168e6, 34.7e9, 84.5)}
# Table 9 (Appendix A.1): CoAtNet-0 with the stride in the depthwise convolution instead
# of the first 1×1.
COATNET0_STRIDED_DEPTHWISE = (25e6, 4.6e9, 82.0)
# timm's untrained coatnet_0_224, counted by the author: a second reference for CoAtNet-0.
COATNET0_TIMM = (25.04e6, 4.58e9)

# Headline results of the attention era, with their sources (top-1 on ImageNet).
ATTENTION_HEADLINES = [
    ("CoAtNet, ImageNet-1K only", 86.0, "Dai et al. 2021, abstract and Table 4 (CoAtNet-3, 512 px)"),
    ("CoAtNet, pre-trained on ImageNet-21K (13M images)", 88.56,
     "Dai et al. 2021, abstract: matches ViT-Huge pre-trained on JFT-300M with 23x less data"),
    ("CoAtNet, pre-trained on JFT-3B", 90.88, "Dai et al. 2021 (arXiv v2), abstract"),
    ("ViT-G/14 (2B parameters), pre-trained on JFT-3B", 90.45, "Zhai et al. 2022, abstract"),
    ("ViT-G/14, 10 examples per class (few-shot)", 84.86, "Zhai et al. 2022, abstract"),
]

# ImageNet as of its site's statistics page (image-net.org, "Summary and Statistics", 2010–2020):
IMAGENET_IMAGES = 14_197_122
IMAGENET_SYNSETS = 21_841          # non-empty synsets
IMAGENET_BOXED_IMAGES = 1_034_908  # images with bounding-box annotations

# Winning top-5 classification error of ILSVRC, by year, with its source. The winning
# entry of each year. 2012's and 2013's best entries used outside data (ImageNet-22k
# pre-training); without it they scored 16.4% and 11.7% (Szegedy et al. 2015, Table 2).
# From 2014 on the winners used ILSVRC's data alone.
ILSVRC_TOP5 = [
    (2010, 28.2, "NEC-UIUC", "Russakovsky et al. 2015, Table 7"),
    (2011, 25.8, "XRCE", "Russakovsky et al. 2015, Table 7"),
    (2012, 15.3, "SuperVision (AlexNet), +ImageNet-22k", "Krizhevsky et al. 2012, Table 2"),
    (2013, 11.2, "Clarifai, +ImageNet-22k", "Szegedy et al. 2015, Table 2"),
    (2014, 6.67, "GoogLeNet", "Szegedy et al. 2015, Table 2"),
    (2015, 3.57, "ResNet (MSRA)", "He et al. 2016, Table 5"),
    (2016, 2.99, "Trimps-Soushen", "ILSVRC 2016 results"),
    (2017, 2.25, "SENet", "Hu et al. 2018, §6"),
]
# Runners-up and variants the chapters mention.
# Krizhevsky et al. 2012, Table 2: five CNNs trained on ILSVRC-2012 alone (15.3% needed two more,
# pre-trained on the ImageNet Fall 2011 release).
ALEXNET_TOP5_WITHOUT_PRETRAINING = 16.4
VGG_TOP5_2014 = 7.3                       # Simonyan & Zisserman 2015, Table 7: ILSVRC-2014 submission, second place

# --------------------------------------------------------------------------- ImageNet,
# one row per architecture The closing chapter (09) sets these beside what our code
# measures. Each is one network's ILSVRC-2012 validation error in %, with the parameters
# and multiply-adds the paper prints; None where the paper gives no such number. Errors,
# not accuracies: where a paper prints top-1 accuracy (ViT, CoAtNet), the error is 100
# minus it, written so that the printed number stays visible. The papers evaluate in
# different ways (crops, scales, resolution, extra data), so each row says how its
# numbers were obtained.


@dataclass(frozen=True)
class ImageNetResult:
    top1_error: float | None   # % on ILSVRC-2012 validation, one network
    top5_error: float | None
    params: float | None       # learnable parameters
    macs: float | None         # multiply-adds of one forward pass
    evaluation: str            # how the errors were measured
    source: str                # paper, table or section


# Szegedy et al. 2015, Table 1: the rows of the stem and the classifier, (params, ops);
# with the inception rows above they make up the whole network. Their sums, 6.8M
# parameters and 1.50G multiply-adds, match the "computational budget of 1.5 billion
# multiply-adds" of §1.
GOOGLENET_OTHER_ROWS = {"conv1": GOOGLENET_CONV1, "conv2": (112e3, 360e6), "linear": (1000e3, 1e6)}
_GOOGLENET_TABLE1 = [*GOOGLENET_ROWS.values(), *GOOGLENET_OTHER_ROWS.values()]

IMAGENET: dict[str, ImageNetResult] = {
    # Krizhevsky et al. 2012, Table 2, row "1 CNN": ILSVRC-2012 validation, averaging
    # the softmax over ten 224-px patches (§4.1); 60 million parameters (abstract). No
    # multiply-adds are given.
    "alexnet": ImageNetResult(40.7, 18.2, ALEXNET_PARAMS, None, "1 CNN, 10 patches",
                              "Krizhevsky et al. 2012, Table 2; abstract"),
    # Simonyan & Zisserman 2015, Table 3 (one test scale, dense evaluation),
    # configurations A and D trained and tested at S = Q = 256; parameters from Table 2.
    # No multiply-adds are given. D trained with scale jitter S ∈ [256, 512] and tested
    # at Q = 384 reaches 25.6 / 8.1 (same table).
    "vgg11": ImageNetResult(29.6, 10.4, VGG_PARAMS_M["A"] * 1e6, None, "dense, 1 scale (256)",
                            "Simonyan & Zisserman 2015, Tables 3 and 2"),
    "vgg16": ImageNetResult(27.0, 8.8, VGG_PARAMS_M["D"] * 1e6, None, "dense, 1 scale (256)",
                            "Simonyan & Zisserman 2015, Tables 3 and 2"),
    # Lin et al. 2014 evaluate NiN on CIFAR-10, CIFAR-100, SVHN and MNIST only (§4): no
    # ImageNet number.
    "nin": ImageNetResult(None, None, None, None, "no ImageNet experiment", "Lin et al. 2014, §4"),
    # Szegedy et al. 2015, Table 3: one model, 10 crops, top-5 only (no top-1 is
    # reported); parameters and multiply-adds are the sums of Table 1's columns (above).
    "googlenet": ImageNetResult(None, 9.15, sum(p for p, _ in _GOOGLENET_TABLE1),
                                sum(o for _, o in _GOOGLENET_TABLE1), "1 model, 10 crops",
                                "Szegedy et al. 2015, Tables 3 and 1; §1"),
    # Ioffe & Szegedy 2015, Figure 4 (a table), row "BN-Inception single crop": 224 px,
    # 1 crop, 1 model; "13.6 · 10^6 parameters" (§4.2). No multiply-adds are given.
    # book.models has no BN-Inception.
    "bn_inception": ImageNetResult(25.2, 7.82, 13.6e6, None, "1 model, 1 crop",
                                   "Ioffe & Szegedy 2015, Figure 4; §4.2"),
    # He et al. 2016, Table 2: ResNet-18, 10-crop top-1 only, with zero-padding
    # shortcuts (option A); Table 3: ResNet-34 with projection shortcuts where the shape
    # changes (option B) and ResNet-50, 10 crops; multiply-adds from Table 1
    # (RESNET_GMACS). The paper gives no ImageNet parameter counts.
    "resnet18": ImageNetResult(27.88, None, None, RESNET_GMACS["resnet18"] * 1e9, "10 crops, option A",
                               "He et al. 2016, Tables 2 and 1"),
    "resnet34": ImageNetResult(24.52, 7.46, None, RESNET_GMACS["resnet34"] * 1e9, "10 crops, option B",
                               "He et al. 2016, Tables 3 and 1"),
    "resnet50": ImageNetResult(22.85, 6.71, None, RESNET_GMACS["resnet50"] * 1e9, "10 crops",
                               "He et al. 2016, Tables 3 and 1"),
    # Huang et al. 2017, Table 3: DenseNet-121, 10 crops (single crop: 25.02 / 7.71). Parameters and
    # FLOPs appear only as points of Figure 3, not as numbers.
    "densenet121": ImageNetResult(23.61, 6.66, None, None, "10 crops", "Huang et al. 2017, Table 3"),
    # Dosovitskiy et al. 2021, Table 5: ViT-B/16 pre-trained on ImageNet (ILSVRC-2012)
    # alone, fine-tuned at 384 px, 77.91% top-1; 86M parameters (Table 1). No top-5 and
    # no inference multiply-adds are given.
    "vit": ImageNetResult(round(100 - 77.91, 2), None, VIT_BASE_PARAMS, None, "ImageNet-1k only, 384 px",
                          "Dosovitskiy et al. 2021, Tables 5 and 1"),
    # Dai et al. 2021, Table 4 (COATNET_TABLE4): CoAtNet-0 at 224 px, ImageNet-1K only:
    # 25M parameters, 4.2B FLOPs (multiply-adds), 81.6% top-1. No top-5 is given.
    "coatnet": ImageNetResult(round(100 - COATNET_TABLE4["CoAtNet-0"][2], 2), None, *COATNET_TABLE4["CoAtNet-0"][:2],
                              "ImageNet-1k only, 224 px", "Dai et al. 2021, Table 4"),
}
