"""Block diagrams of a network, drawn from the model itself.

The issue asked for figures that stay true when the code changes, so nothing here is drawn by hand:
torchview (``draw_graph``) runs one forward pass and records which module fed which, with every
output shape; this module only post-processes torchview's graphviz graph. It folds shape-keeping
layers (ReLU, BN, LRN, dropout) into the box before them, relabels each box with the paper's layer
name (``summary.layer_names``), what the layer does (kernel/stride, blocks per stage) and its output
shape (channels × height × width), and lays the boxes out as one compact column for a book page.
Graphviz's ``dot`` renders the SVG.

Two views: ``architecture_diagram`` draws the whole network one paper unit to a box, and
``block_diagram`` draws ONE of those units (the ``diagram_block`` of its ``Spec``) a
level deeper, where the idea of the architecture lives: ResNet's shortcut additions,
DenseNet's concatenations, GoogLeNet's four branches, NiN's mlpconv.
"""

from __future__ import annotations

import html
import itertools
import re
import shutil

import torch
import torchview
from IPython.display import SVG
from torch import nn
from torchview.computation_node import FunctionNode, ModuleNode, TensorNode

from . import models, summary

# Layers that keep the shape of their input are written into the box before them instead
# of a box of their own.
_FOLDED = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.LayerNorm,
           nn.LocalResponseNorm)
_QUIET = (nn.ReLU, nn.GELU, nn.Tanh, nn.Identity, nn.BatchNorm2d, nn.LayerNorm)  # not worth a word
_FUNCTIONS = {"adaptive_avg_pool2d": "global avg pool", "cat": "concatenate", "__getitem__": "select", "add": "add"}
_JOINS = ("cat", "add")  # functions that merge paths: drawn in their own colour, never folded away
_RESHAPES = ("flatten", "transpose", "reshape", "view", "permute")
_WRAP = 40  # characters of description per line: about what a 190 pt cell of 11 pt Helvetica holds


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program, which renders the diagram, is not installed."""


def _pair(value) -> str:
    a, b = value if isinstance(value, tuple) else (value, value)
    return f"{a}×{b}"


def _words(cls: type) -> str:
    """MBConv → "MBConv", BasicBlock → "basic block", EncoderBlock → "encoder block"."""
    name = cls.__name__
    return name if re.search(r"[A-Z]{2}", name) else re.sub(r"(?<!^)([A-Z])", r" \1", name).lower()


def _quiet(module: nn.Module | None) -> bool:
    """Layers not worth a word in a box; dropout is, when it drops something (AlexNet's
    fc6, fc7: §4.2)."""
    return isinstance(module, _QUIET) or (isinstance(module, nn.Dropout) and module.p == 0)


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
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p:g}"
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
    # The leaves in the order they run (GoogLeNet's stem: pool, LRN, convs, LRN, pool as
    # in Figure 3).
    words = [describe(m) for m in module.modules() if next(m.children(), None) is None
             and not _quiet(m) and not isinstance(m, nn.Flatten)]
    runs = [(w, len(list(group))) for w, group in itertools.groupby(words)]
    if len(runs) > 8:
        return _words(type(module))
    return ", ".join(w if n == 1 else f"{n} × {w}" for w, n in runs)


def _shape(node) -> tuple[int, ...]:
    shapes = node.tensor_shape if isinstance(node, TensorNode) else node.output_shape[0]
    return tuple(shapes[1:])


def _lines(text: str, width: int) -> str:
    """``text`` escaped, broken after commas into lines of at most ``width`` characters
    where it can."""
    lines = [""]
    for part in text.split(", "):
        if lines[-1] and len(lines[-1]) + 2 + len(part) > width:
            lines[-1] += ","
            lines.append(part)
        else:
            lines[-1] += (", " if lines[-1] else "") + part
    return '<BR ALIGN="LEFT"/>'.join(html.escape(line) for line in lines)


def _label(name: str, what: str, shape: tuple[int, ...], bold: bool = True, compact: bool = False) -> str:
    """One box: name, description, shape in a row; ``compact`` stacks them in a 110 pt
    box, so that four parallel branches fit the book's 700 px column side by side."""
    name = f"<B>{html.escape(name)}</B>" if bold and name else html.escape(name)
    size = "×".join(map(str, shape))
    if compact:
        rows = f'<TR><TD ALIGN="LEFT">{name}</TD><TD ALIGN="RIGHT">{size}</TD></TR>'
        if what:
            rows += f'<TR><TD ALIGN="LEFT" COLSPAN="2" BALIGN="LEFT">{_lines(what, 24)}</TD></TR>'
        return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1" WIDTH="110">{rows}</TABLE>>'
    cells = [f'<TD ALIGN="LEFT" WIDTH="96">{name}</TD>',
             f'<TD ALIGN="LEFT" BALIGN="LEFT" WIDTH="190">{_lines(what, _WRAP)}</TD>',
             f'<TD ALIGN="RIGHT" WIDTH="76">{size}</TD>']
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2"><TR>{"".join(cells)}</TR></TABLE>>'


def _compact_svg(svg: str) -> str:
    """Drop what a browser does not need: comments, tooltips, ids and classes."""
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r"<title>.*?</title>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s(?:id|class)="[^"]*"', "", svg)
    svg = re.sub(r"<\?xml.*?\?>\s*|<!DOCTYPE.*?>\s*", "", svg, flags=re.S)
    return re.sub(r">\s+<", "><", svg)


def _require_dot():
    if shutil.which("dot") is None:
        raise GraphvizNotFound("architecture_diagram needs Graphviz's `dot` program to render: install Graphviz "
                               "(apt-get install graphviz / brew install graphviz / conda install graphviz)")


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _nodes_and_edges(traced) -> tuple[list, list]:
    """The visible nodes in order of the forward pass, and the edges between them.

    torchview draws a tensor again (an "auxiliary" copy with the same node id) for each
    container that reads it; the copies are one node here, so that an inception block's
    four branches fork from one input."""
    first: dict[str, object] = {}

    def one(node):
        return first.setdefault(node.node_id, node) if isinstance(node, TensorNode) else node

    order, edges = [], []
    for tail, head in traced.edge_list:
        tail, head = one(tail), one(head)
        for node in (tail, head):
            if node not in order:
                order.append(node)
        if (tail, head) not in edges:
            edges.append((tail, head))
    return order, edges


def _side_inputs(module: nn.Module, order: list) -> dict:
    """{join node: [(parameter name, shape)]}: learned tensors that ``module``'s own
    forward concatenates or adds.

    torchview records only tensors computed from the input, so ViT's class token
    (prepended to the patches) and its position embeddings (added to them, Eq. 1) would
    vanish from the graph; they are found again among the module's own parameters by
    shape: a concatenation's output is its input plus the parameter along one axis, an
    addition's output has the parameter's shape."""
    own = [(name, tuple(p.shape[1:])) for name, p in module.named_parameters(recurse=False)]
    found: dict = {}
    for node in order:
        if not own or not isinstance(node, FunctionNode) or node.name not in _JOINS:
            continue
        out, first = tuple(node.output_shape[0][1:]), tuple(node.input_shape[0][1:])
        for name, shape in own:
            if len(shape) != len(out):
                continue
            if node.name == "add":
                fits = shape == out and len(node.input_shape) == 1
            else:
                differ = [a != b for a, b in zip(shape, out)]
                fits = sum(differ) == 1 and all(s + f == o for s, f, o, d in zip(shape, first, out, differ) if d)
            if fits:
                found[node] = [(name, shape)]
                own.remove((name, shape))
                break
    return found


def _boxes(order: list, edges: list, module_of, side: dict) -> tuple[dict, dict, dict, dict]:
    """{node: the node whose box shows it}: shape-keeping layers join the box before
    them, reshapes a neighbour.

    A node folds into the box before it when it keeps the shape and is that box's only
    successor, and a reshape (flatten, transpose) into the box after it, so that each
    box shows the shape it computes. Joins (add, concatenate) stay boxes of their own:
    they are the shortcuts and dense connections."""
    before = {n: [t for t, h in edges if h is n] for n in order}
    after = {n: [h for t, h in edges if t is n] for n in order}

    def is_reshape(node):
        return isinstance(module_of(node), nn.Flatten) or getattr(node, "name", "") in _RESHAPES

    def is_join(node):
        return isinstance(node, FunctionNode) and (len(before[node]) > 1 or node in side)

    def keeps_shape(node):
        return isinstance(module_of(node), _FOLDED) or (
            isinstance(node, FunctionNode) and len(before[node]) == 1 and not is_join(node)
            and node.output_shape[:1] == node.input_shape[:1])

    def into_join(node):  # ViT: flatten and transpose belong to the patch embedding, not to the class-token concat
        while len(after[node]) == 1 and after[node][0] not in side and is_reshape(after[node][0]):
            node = after[node][0]
        return len(after[node]) == 1 and after[node][0] in side

    box = {}
    for node in order:
        previous = before[node][0] if len(before[node]) == 1 else None
        foldable = previous is not None and len(after[previous]) == 1 and not isinstance(previous, TensorNode)
        box[node] = box[previous] if foldable and not is_join(node) and (
            keeps_shape(node) or (is_reshape(node) and (not after[node] or into_join(node)))) else node
    for node in reversed(order):  # a reshape joins the next box when nothing else feeds that box
        nxt = after[node][0] if len(after[node]) == 1 else None
        if box[node] is node and is_reshape(node) and nxt is not None and before[nxt] == [node] and \
                not isinstance(nxt, TensorNode) and nxt not in side:
            for other in order:
                if box[other] is node:
                    box[other] = box[nxt]
    members = {n: [m for m in order if box[m] is n] for n in order if box[n] is n}
    return box, members, before, after


def _style(graph, title: str | None, direction: str) -> None:
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
    graph.edge_attr.update(arrowsize="0.5", penwidth="0.8", weight="8")


def _draw(root: nn.Module, module: nn.Module, traced, *, title: str | None, direction: str,
          tags: dict[str, str] | None = None, clusters: bool = False) -> SVG:
    """Relabel torchview's graph of ``module`` (``root`` or one of its blocks) and render it.

    ``tags`` add a word to a box's name (CoAtNet's C and T); ``clusters`` frames the
    nodes of each child of ``module`` (the blocks of a stage, the branches of an
    inception block) and draws compact boxes."""
    paths = {id(m): path for path, m in root.named_modules()}
    names = summary.layer_names(root)
    modules = dict(root.named_modules())
    here = paths[id(module)]
    tags = tags or {}

    def module_of(node):
        return modules.get(paths.get(getattr(node, "compute_unit_id", None))) if isinstance(node, ModuleNode) else None

    order, edges = _nodes_and_edges(traced)
    side = _side_inputs(module, order)
    box, members, before, after = _boxes(order, edges, module_of, side)

    def child_of(path):  # the child of ``module`` that holds ``path``: the cluster it is drawn in
        rest = path[len(here) + 1:] if here else path
        return f"{here}.{rest.split('.')[0]}" if here else rest.split(".")[0]

    def name_of(path):  # a box inside a block drops the block's name: "conv1", not "conv3_x block 1 conv1"
        name = names.get(path, path.rsplit(".", 1)[-1])
        for prefix in ((child_of(path), here) if clusters else (here,)):
            if prefix and prefix != path and name.startswith(names.get(prefix, "\0") + " "):
                return name[len(names[prefix]) + 1:]
        return name

    graph = traced.visual_graph
    _style(graph, title, direction)
    ids = {n: str(i) for i, n in enumerate(members)}
    framed: dict[str, list[tuple[str, str, str]]] = {}  # cluster path -> its boxes
    for first, parts in members.items():
        last = parts[-1]
        if isinstance(first, TensorNode):
            if before[first]:  # the output: the last box already shows its shape
                continue
            graph.node(ids[first], _label("input", "", _shape(first), bold=False, compact=clusters),
                       fillcolor="#eeeeee", style="filled")
            continue
        part = module_of(first)
        path = paths.get(id(part))
        name = name_of(path) if part is not None else _FUNCTIONS.get(first.name, first.name)
        if path in tags:
            name += f" ({tags[path]})"
        what = [describe(m) if m is not None else p.name if p is not first else ""
                for p, m in ((p, module_of(p)) for p in parts) if not _quiet(m)]
        color = "#fbe3c4" if first.name in _JOINS and part is None else \
            "#dbe8f5" if part is not None and next(part.children(), None) is not None else "#f3f6fa"
        label = _label(name, ", ".join(w for w in what if w), _shape(last), compact=clusters)
        if clusters and part is not None and path != here:
            framed.setdefault(child_of(path), []).append((ids[first], label, color))
        else:
            graph.node(ids[first], label, fillcolor=color)
        for i, (parameter, shape) in enumerate(side.get(first, ())):
            graph.node(f"{ids[first]}p{i}", _label(parameter.replace("_", " "), "learned", shape, bold=False,
                                                    compact=True), fillcolor="#eeeeee", style="filled")
            graph.edge(f"{ids[first]}p{i}", ids[first], weight="1")  # light: the network's column stays straight
    rank = {path: i for i, path in enumerate(modules)}  # frames left to right in the order of the code
    for i, (path, nodes) in enumerate(sorted(framed.items(), key=lambda item: rank[item[0]])):
        with graph.subgraph(name=f"cluster_{i}") as frame:
            frame.attr(label=name_of(path), style="rounded,dashed", color="#8899aa", fontsize="11",
                       labeljust="l", margin="4")
            for node_id, label, color in nodes:
                frame.node(node_id, label, fillcolor=color)
    def code_order(edge):  # a fork's paths left to right as the code lists them (branch1 … branch_pool)
        path = paths.get(id(module_of(box[edge[1]])))
        return rank.get(path, len(rank)) if clusters else 0

    if clusters:
        graph.graph_attr["ordering"] = "out"
    for tail, head in sorted(edges, key=code_order):
        is_output = isinstance(head, TensorNode) and not after[head]
        if box[tail] is not box[head] and not is_output:
            # An edge straight into an addition from a box that also feeds another path
            # is the identity shortcut (He et al. §3.2): dashed, so that the eye finds
            # it beside the convolutions.
            identity = getattr(head, "name", "") == "add" and len({box[h] for h in after[tail]}) > 1 \
                and box[head] is head
            graph.edge(ids[box[tail]], ids[box[head]], **(dict(style="dashed", label=" identity",
                                                               fontsize="9", fontname="Helvetica") if identity else {}))
    image = SVG(_compact_svg(graph.pipe(format="svg", encoding="utf-8")))
    image.source = graph.source  # the DOT text, for other formats: graphviz.Source(image.source).pipe("png")
    return image


def architecture_diagram(model: nn.Module, input_size: tuple[int, ...], *, depth: int | None = None,
                         title: str | None = None, direction: str = "TB") -> SVG:
    """A block diagram of ``model`` for an input of ``input_size`` (with the batch
    dimension), as inline SVG.

    One box per module ``depth`` levels down (default: the ``diagram_depth`` of the
    architecture's ``Spec``, whose boxes are the paper's units; 1, the children, for any
    other model), named as in the paper, with what it does and its output shape C×H×W;
    shape-keeping layers are folded into the box before them. Learned tensors the
    network itself concatenates or adds (ViT's class token and position embeddings, Eq.
    1) are drawn feeding their join. ``direction`` is graphviz's rankdir ("TB" top to
    bottom, "LR" left to right). The returned ``IPython.display.SVG`` shows itself in a
    notebook; its ``.data`` is the SVG text and its ``.source`` the graphviz DOT text.
    ``block_diagram`` draws one unit in full.
    """
    _require_dot()
    spec = models.spec_of(model)
    if depth is None:
        depth = spec.diagram_depth if spec is not None else 1
    tags = spec.diagram_tags(model) if spec is not None and spec.diagram_tags is not None else None
    traced = torchview.draw_graph(model, input_size=input_size, depth=depth, device=_device(model), mode="eval")
    return _draw(model, model, traced, title=title, direction=direction, tags=tags)


def _block_inputs(model: nn.Module, block: nn.Module, input_size: tuple[int, ...]) -> list[torch.Tensor]:
    """The tensors that reach ``block`` when ``model`` sees a zero image of
    ``input_size`` (a forward hook)."""
    seen: list = []
    hook = block.register_forward_pre_hook(lambda _module, inputs: seen.append(inputs) if not seen else None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_size, device=_device(model)))
    finally:
        hook.remove()
        model.train(was_training)
    return list(seen[0])


def block_diagram(model: nn.Module, input_size: tuple[int, ...], *, block: str | None = None,
                  depth: int | None = None, title: str | None = None, direction: str = "TB") -> SVG:
    """One unit of ``model`` drawn in full, to stand beside ``architecture_diagram``'s
    one box for it.

    ``block`` is a module path and ``depth`` the torchview depth inside it (default: the
    ``diagram_block`` of the architecture's ``Spec``: ResNet's conv3_x, whose first
    block has the projection shortcut of §3.3 and whose second the identity; DenseNet's
    dense block 1, each layer reading the concatenation of all earlier maps (Eq. 2);
    GoogLeNet's inception 3a, four branches (Figure 2b); NiN's mlpconv1, a convolution
    and two 1×1 convolutions (§3.1)). The block runs on the very tensors that reach it
    in ``model`` for an input of ``input_size``, so its shapes are those of the whole
    network. With depth 2 or more, the boxes of each child of the block (a residual
    block, a dense layer, a branch) are framed together and drawn compact, so that
    parallel paths fit the book's column side by side.
    """
    _require_dot()
    spec = models.spec_of(model)
    if block is None:
        if spec is None or spec.diagram_block is None:
            raise ValueError(f"{type(model).__name__} has no diagram_block in its Spec: name the block, "
                             f"e.g. block={next(iter(dict(model.named_children())), '')!r}")
        block, default_depth = spec.diagram_block
        depth = default_depth if depth is None else depth
    part = model.get_submodule(block)
    depth = 1 if depth is None else depth
    traced = torchview.draw_graph(part, input_data=_block_inputs(model, part, input_size), depth=depth,
                                  device=_device(model), mode="eval")
    title = title if title is not None else summary.layer_names(model).get(block, block)
    return _draw(model, part, traced, title=title, direction=direction, clusters=depth > 1)
