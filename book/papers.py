"""The papers' own numbers, as printed in their tables, to set beside what our code measures."""

from __future__ import annotations

# Krizhevsky et al. 2012, §1 and §3: "60 million parameters"; the two-tower network of Figure 2.
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
# 34M ops; 7·7·3·64 = 9,408 weights and 9,408·112·112 = 118M multiply-adds. The table disagrees with
# itself there (2.7K·112·112 would be 34M: the row seems to count a one-channel input).
GOOGLENET_CONV1 = (2.7e3, 34e6)

# He et al. 2016, Table 1: FLOPs, which the paper counts as multiply-adds, in billions.
RESNET_GMACS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}

# Huang et al. 2017 report DenseNet-BC sizes in Table 2 and Figure 3 only roughly (8.0M, 14.1M, 20.0M,
# 28.7M); these are the exact counts of the ImageNet models released with the paper.
DENSENET_PARAMS = {"densenet121": 7_978_856, "densenet169": 14_149_480, "densenet201": 20_013_928,
                   "densenet161": 28_681_000}

# Dosovitskiy et al. 2021, Table 1: ViT-Base has 86M parameters.
VIT_BASE_PARAMS = 86_000_000

# ImageNet as of its site's statistics page (image-net.org, "Summary and Statistics", 2010–2020):
IMAGENET_IMAGES = 14_197_122
IMAGENET_SYNSETS = 21_841          # non-empty synsets
IMAGENET_BOXED_IMAGES = 1_034_908  # images with bounding-box annotations

# Winning top-5 classification error of ILSVRC, by year, with its source.
ILSVRC_TOP5 = [
    (2010, 28.2, "NEC-UIUC", "Russakovsky et al. 2015, Table 7"),
    (2011, 25.8, "XRCE", "Russakovsky et al. 2015, Table 7"),
    (2012, 15.3, "SuperVision (AlexNet)", "Krizhevsky et al. 2012, Table 2"),
    (2013, 11.7, "Clarifai", "Russakovsky et al. 2015, Table 7"),
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
