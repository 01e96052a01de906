"""Block diagrams of a network, drawn from the model itself.

The issue asked for figures that stay true when the code changes, so nothing here is drawn by hand:
torchview (``draw_graph``) runs one forward pass and records which module fed which, with every
output shape; this module only post-processes torchview's graphviz graph. It folds shape-keeping
layers (ReLU, BN, LRN, dropout) into the box before them, relabels each box with the paper's layer
name (``summary.layer_names``), what the layer does (kernel/stride, blocks per stage) and its output
shape (channels × height × width), and lays the boxes out as one compact column for a book page.
Graphviz's ``dot`` renders the SVG.
"""

from __future__ import annotations

import html
import re
import shutil
from collections import Counter

import torch
import torchview
from IPython.display import SVG
from torch import nn

from . import models, summary

# Layers that keep the shape of their input are written into the box before them instead of a box of their own.
_FOLDED = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.LayerNorm,
           nn.LocalResponseNorm)
_QUIET = (nn.ReLU, nn.GELU, nn.Tanh, nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.LayerNorm)  # not worth a word
_FUNCTIONS = {"adaptive_avg_pool2d": "global avg pool", "cat": "concatenate", "__getitem__": "select", "add": "add"}
_RESHAPES = ("flatten", "transpose", "reshape", "view", "permute")


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program, which renders the diagram, is not installed."""


def _pair(value) -> str:
    a, b = value if isinstance(value, tuple) else (value, value)
    return f"{a}×{b}"


def _words(cls: type) -> str:
    """MBConv → "MBConv", BasicBlock → "basic block", EncoderBlock → "encoder block"."""
    name = cls.__name__
    return name if re.search(r"[A-Z]{2}", name) else re.sub(r"(?<!^)([A-Z])", r" \1", name).lower()


def describe(module: nn.Module) -> str:
    """What a module does, in a few words: "conv 11×11/4", "max pool 3×3/2", "2 × basic block"."""
    if isinstance(module, nn.Conv2d):
        stride = module.stride[0]
        text = f"conv {_pair(module.kernel_size)}" + (f"/{stride}" if stride > 1 else "")
        if module.groups > 1:
            text += ", depthwise" if module.groups == module.out_channels else f", {module.groups} groups"
        return text
    if isinstance(module, nn.Linear):
        return "fully connected"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        return f"{kind} pool {_pair(module.kernel_size)}" + (f"/{stride}" if stride > 1 else "")
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "global avg pool" if module.output_size in (1, (1, 1)) else f"avg pool to {_pair(module.output_size)}"
    if isinstance(module, nn.LocalResponseNorm):
        return "LRN"
    if isinstance(module, nn.MultiheadAttention):
        return f"attention, {module.num_heads} heads"
    if isinstance(module, models.Inception):  # Table 1's columns: the channels each branch contributes
        parts = []
        for branch in (module.branch1, module.branch3, module.branch5, module.branch_pool):
            convs = [m for m in branch.modules() if isinstance(m, nn.Conv2d)]
            pooled = any(isinstance(m, nn.MaxPool2d) for m in branch.modules())
            kernel = "pool" if pooled else _pair(max(c.kernel_size for c in convs))
            parts.append(f"{kernel} {convs[-1].out_channels}" if convs else kernel)
        return " + ".join(parts)
    children = list(module.children())
    if not children:
        return _words(type(module))
    if all(next(c.children(), None) is not None for c in children) and len({type(c) for c in children}) == 1 \
            and not isinstance(children[0], (nn.Sequential, nn.ModuleList)):
        text = f"{len(children)} × {_words(type(children[0]))}"
        convs = [m for m in children[0].modules() if isinstance(m, nn.Conv2d)]
        if type(children[0]).__name__ == "DenseLayer":  # each layer adds its growth rate k
            text += f", k = {convs[-1].out_channels}"
        return text
    words = [describe(m) for m in module.modules() if next(m.children(), None) is None
             and not isinstance(m, (*_QUIET, nn.LocalResponseNorm, nn.Flatten))]
    runs = [(w, n) for w, n in Counter(words).items()]
    if len(runs) > 4:
        return _words(type(module))
    return ", ".join(w if n == 1 else f"{n} × {w}" for w, n in runs)


def _shape(node) -> tuple[int, ...]:
    shapes = node.tensor_shape if isinstance(node, torchview.computation_node.TensorNode) else node.output_shape[0]
    return tuple(shapes[1:])


def _label(name: str, what: str, shape: tuple[int, ...], bold: bool = True) -> str:
    cells = [f'<TD ALIGN="LEFT" WIDTH="96">{"<B>" if bold else ""}{html.escape(name)}{"</B>" if bold else ""}</TD>',
             f'<TD ALIGN="LEFT" WIDTH="190">{html.escape(what)}</TD>',
             f'<TD ALIGN="RIGHT" WIDTH="76">{"×".join(map(str, shape))}</TD>']
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2"><TR>{"".join(cells)}</TR></TABLE>>'


def _compact_svg(svg: str) -> str:
    """Drop what a browser does not need: comments, tooltips, ids and classes."""
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r"<title>.*?</title>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s(?:id|class)="[^"]*"', "", svg)
    svg = re.sub(r"<\?xml.*?\?>\s*|<!DOCTYPE.*?>\s*", "", svg, flags=re.S)
    return re.sub(r">\s+<", "><", svg)


def architecture_diagram(model: nn.Module, input_size: tuple[int, ...], *, depth: int | None = None,
                         title: str | None = None, direction: str = "TB") -> SVG:
    """A block diagram of ``model`` for an input of ``input_size`` (with the batch dimension), as inline SVG.

    One box per module ``depth`` levels down (default: the ``diagram_depth`` of the architecture's ``Spec``,
    whose boxes are the paper's units; 1, the children, for any other model), named as in the
    paper, with what it does and its output shape C×H×W; shape-keeping layers are folded into the box
    before them. ``direction`` is graphviz's rankdir ("TB" top to bottom, "LR" left to right).
    The returned ``IPython.display.SVG`` shows itself in a notebook; its ``.data`` is the SVG text and
    its ``.source`` the graphviz DOT text.
    """
    if shutil.which("dot") is None:
        raise GraphvizNotFound("architecture_diagram needs Graphviz's `dot` program to render: install Graphviz "
                               "(apt-get install graphviz / brew install graphviz / conda install graphviz)")
    if depth is None:
        spec = models.spec_of(model)
        depth = spec.diagram_depth if spec is not None else 1
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    traced = torchview.draw_graph(model, input_size=input_size, depth=depth, device=device, mode="eval")

    paths = {id(m): path for path, m in model.named_modules()}
    names = summary.layer_names(model)
    modules = dict(model.named_modules())

    def module_of(node):
        return modules.get(paths.get(getattr(node, "compute_unit_id", None))) \
            if isinstance(node, torchview.computation_node.ModuleNode) else None

    # The visible nodes in order of the forward pass, and the edges between them.
    order, edges = [], []
    for tail, head in traced.edge_list:
        for node in (tail, head):
            if node not in order:
                order.append(node)
        if (tail, head) not in edges:
            edges.append((tail, head))
    before = {n: [t for t, h in edges if h is n] for n in order}
    after = {n: [h for t, h in edges if t is n] for n in order}

    # Fold a node into the box before it when it keeps the shape and is that box's only successor, and a
    # reshape (flatten, transpose) into the box after it, so that each box shows the shape it computes.
    def is_reshape(node):
        return isinstance(module_of(node), nn.Flatten) or getattr(node, "name", "") in _RESHAPES

    def keeps_shape(node):
        return isinstance(module_of(node), _FOLDED) or (
            isinstance(node, torchview.computation_node.FunctionNode) and len(before[node]) == 1
            and node.output_shape[:1] == node.input_shape[:1])

    box = {}
    for node in order:
        previous = before[node][0] if len(before[node]) == 1 else None
        foldable = previous is not None and len(after[previous]) == 1 and \
            not isinstance(previous, torchview.computation_node.TensorNode)
        box[node] = box[previous] if foldable and (keeps_shape(node) or (is_reshape(node) and not after[node])) \
            else node
    for node in reversed(order):  # a reshape joins the next box when nothing else feeds that box
        nxt = after[node][0] if len(after[node]) == 1 else None
        if box[node] is node and is_reshape(node) and nxt is not None and before[nxt] == [node] and \
                not isinstance(nxt, torchview.computation_node.TensorNode):
            for other in order:
                if box[other] is node:
                    box[other] = box[nxt]
    members = {n: [m for m in order if box[m] is n] for n in order if box[n] is n}

    graph = traced.visual_graph
    graph.body.clear()
    graph.graph_attr.clear()
    graph.graph_attr.update(rankdir=direction, nodesep="0.08", ranksep="0.12", margin="0", pad="0.05",
                            fontname="Helvetica", fontsize="12", labelloc="t")
    if title:
        graph.graph_attr["label"] = title
    graph.node_attr.clear()
    graph.node_attr.update(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11",
                           height="0.2", margin="0.04,0.02", penwidth="0.8")
    graph.edge_attr.clear()
    graph.edge_attr.update(arrowsize="0.5", penwidth="0.8")
    ids = {n: str(i) for i, n in enumerate(members)}
    for first, parts in members.items():
        last = parts[-1]
        if isinstance(first, torchview.computation_node.TensorNode):
            if before[first]:  # the output: the last box already shows its shape
                continue
            graph.node(ids[first], _label("input", "", _shape(first), bold=False), fillcolor="#eeeeee", style="filled")
            continue
        module = module_of(first)
        name = names.get(paths.get(id(module)), type(module).__name__) if module is not None else \
            _FUNCTIONS.get(first.name, first.name)
        what = [describe(m) if m is not None else p.name if p is not first else ""
                for p, m in ((p, module_of(p)) for p in parts) if not isinstance(m, _QUIET)]
        color = "#dbe8f5" if module is not None and next(module.children(), None) is not None else "#f3f6fa"
        graph.node(ids[first], _label(name, ", ".join(w for w in what if w), _shape(last)), fillcolor=color)
    for tail, head in edges:
        is_output = isinstance(head, torchview.computation_node.TensorNode) and not after[head]
        if box[tail] is not box[head] and not is_output:
            graph.edge(ids[box[tail]], ids[box[head]])
    image = SVG(_compact_svg(graph.pipe(format="svg", encoding="utf-8")))
    image.source = graph.source  # the DOT text, for other formats: graphviz.Source(image.source).pipe("png")
    return image
