"""Export a network of a model directory to ONNX or MINDIR, checked against the network itself.

    from deploy.exporter import export_network
    info = export_network("runs/celeba_stgan/model", "G", "ONNX", "stgan.onnx", batch=1)

The network is loaded on MindSpore's own operators (no CPU kernels), in inference mode, its layers swapped for
exportable forms (deploy/portable.py), wrapped to keep the one output that matters (signatures.py), and
exported with `mindspore.export`. ONNX files then get input and output names, an optional dynamic batch
axis, and metadata (the family's model.json entries, the inputs' meaning) through the `onnx` package, and the
file is written atomically. `check_export` runs the file (onnxruntime, or `mindspore.load` + `nn.GraphCell`)
against the model directory's network on random inputs.
"""
import json
import os

import numpy as np

from .signatures import DEFAULT_NETS, SIGNATURES


class ExportError(Exception):
    """A network that cannot be exported as asked; one line."""


FORMATS = {"ONNX": ".onnx", "MINDIR": ".mindir"}
TRACE_BATCH = 7


def pick_net(meta, net):
    nets = meta.get("networks", {})
    if net is not None:
        if net not in nets:
            raise ExportError(f"no network {net} in this model dir (it has: {' '.join(nets)})")
        return net
    for name in DEFAULT_NETS:
        if name in nets:
            return name
    raise ExportError(f"pick one with --net: {' '.join(nets)}")


def plan(directory, net=None, batch=1, img_size=None):
    """(meta, net name, registry model, signature, [(input name, shape, meaning)]) for an export."""
    from models import NetworkLoadError, read_model_json
    try:
        meta = read_model_json(directory)
    except NetworkLoadError as e:
        raise ExportError(str(e)) from None
    name = pick_net(meta, net)
    model = meta["networks"][name]["model"]
    sig = SIGNATURES.get(model)
    if sig is None:
        raise ExportError(f"{name} is a {model}, which export.py does not export (it exports: "
                          f"{', '.join(sorted(SIGNATURES))})")
    if batch < 1:
        raise ExportError("--batch must be at least 1")
    inputs = sig.inputs(meta["networks"][name].get("config", {}), meta, batch, img_size)
    return meta, name, model, sig, inputs


def _wrap(net, index):
    from mindspore import nn

    class Keep(nn.Cell):
        def __init__(self, inner):
            super().__init__(auto_prefix=False)
            self.inner = inner

        def construct(self, *xs):
            out = self.inner(*xs)
            return out if index is None else out[index]
    w = Keep(net)
    w.set_train(False)
    return w


def example_inputs(inputs, seed=0):
    """Random inputs of the signature's shapes: images in their range, labels 0/1, noise N(0, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, shape, meaning in inputs:
        if name == "image":
            lo = 0.0 if "[0, 1]" in meaning else -1.0
            out.append(rng.uniform(lo, 1.0, shape).astype(np.float32))
        elif name in ("labels", "label", "label_map"):
            out.append(rng.integers(0, 2, shape).astype(np.float32))
        elif name == "attributes":
            out.append(rng.choice([-0.5, 0.0, 0.5], shape).astype(np.float32))
        else:
            out.append(rng.standard_normal(shape).astype(np.float32))
    return out


def load_for_export(directory, name, model, options=None):
    from models import NetworkLoadError, load_network
    try:
        net = load_network(directory, name, expect_model=model, accelerate=False, **(options or {}))
    except NetworkLoadError as e:
        raise ExportError(str(e)) from None
    return net


def export_network(directory, net=None, fmt="ONNX", output=None, batch=1, img_size=None, dynamic_batch=False,
                   instance_stats=True):
    """Export and return a dict describing the file (path, format, inputs, output, metadata).
    instance_stats: StarGAN's norms on each image's statistics (its test script) or its running ones."""
    import mindspore as ms
    from deploy.portable import make_portable
    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: choose ONNX or MINDIR")
    meta, name, model, sig, inputs = plan(directory, net, batch, img_size)
    output = output or os.path.join(directory, f"{name}{FORMATS[fmt]}")
    if not output.endswith(FORMATS[fmt]):
        raise ExportError(f"--output {output}: a {fmt} file must end in {FORMATS[fmt]}")
    cell = load_for_export(directory, name, model)
    if model == "stargan_generator":
        from models.stargan import use_instance_stats
        use_instance_stats(cell, instance_stats)
    make_portable(cell, inputs[0][1][2:] if inputs[0][0] == "image" else None)
    wrapped = _wrap(cell, sig.output)
    if dynamic_batch:         # traced at an odd batch size that no other axis has, then made symbolic
        if fmt != "ONNX":
            raise ExportError("--dynamic_batch is for ONNX; a MINDIR file keeps the --batch it was exported with")
        _, _, _, _, traced = plan(directory, net, TRACE_BATCH, img_size)
        args = [ms.Tensor(x) for x in example_inputs(traced)]
    else:
        args = [ms.Tensor(x) for x in example_inputs(inputs)]
    described = {"family_arch": meta.get("arch"), "network": name, "model": model,
                 "inputs": [{"name": n, "shape": ["N" if dynamic_batch and i == 0 else d for i, d in enumerate(s)],
                             "meaning": m} for n, s, m in inputs],
                 "output": {"name": sig.output_name, "meaning": sig.output_meaning},
                 "label": meta.get("label", ""), "model_json": {k: v for k, v in meta.items()
                                                                if k in ("attributes", "domains", "labels", "arch",
                                                                         "label")}}
    if model == "stargan_generator":
        described["stats"] = "instance" if instance_stats else "running"
    from core.files import atomic_write

    def write(tmp):
        stem = tmp[:-len(FORMATS[fmt])]
        try:
            ms.export(wrapped, *args, file_name=stem, file_format=fmt)
        except (RuntimeError, TypeError, ValueError) as e:
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ExportError(f"MindSpore could not export {name} as {fmt}: {first}") from None
        if fmt == "ONNX":
            _finish_onnx(tmp, inputs, sig, dynamic_batch, described)
        os.chmod(tmp, 0o644)          # mindspore.export leaves its files readable by the owner only
    try:
        atomic_write(output, write)
    except OSError as e:
        raise ExportError(f"cannot write {output}: {e.strerror or e}") from None
    described.update(path=output, format=fmt)
    return described


def _finish_onnx(path, inputs, sig, dynamic_batch, described):
    """Names for the graph's inputs and output, the batch axis symbolic on request, the description as
    metadata (key "facegan"), checked by onnx's own checker."""
    import onnx
    m = onnx.load(path)
    graph = m.graph
    params = {i.name for i in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in params]
    if len(real_inputs) != len(inputs) or len(graph.output) != 1:
        raise ExportError(f"unexpected ONNX graph: {len(real_inputs)} inputs, {len(graph.output)} outputs")
    _fix_conv_pads(graph)
    renames = {old.name: new for old, (new, _, _) in zip(real_inputs, inputs)}
    renames[graph.output[0].name] = sig.output_name
    for node in graph.node:
        node.input[:] = [renames.get(x, x) for x in node.input]
        node.output[:] = [renames.get(x, x) for x in node.output]
    for v in list(graph.input) + list(graph.output):
        v.name = renames.get(v.name, v.name)
        if dynamic_batch:
            dim = v.type.tensor_type.shape.dim[0]
            dim.ClearField("dim_value")
            dim.dim_param = "N"
    if dynamic_batch:
        _symbolic_batch(graph)
        del graph.value_info[:]          # shapes inferred at the traced batch
    m.metadata_props.add(key="facegan", value=json.dumps(described))
    onnx.checker.check_model(m)
    onnx.save(m, path)


def _fix_conv_pads(graph):
    """MindSpore 2.10 writes a Conv's and a ConvTranspose's pads in its own order (top, bottom, left, right);
    ONNX reads (top, left, bottom, right). Equal pads on all sides hide it; the FID network's 1x3 / 3x1
    convolutions and PyTorch's transposed-convolution cropping do not. It also gives a ConvTranspose an
    output_shape of four values (N, C, H, W), which makes runtimes ignore the pads and choose their own
    split. The pads are reordered and output_shape dropped: the output size then follows from the pads, as
    PyTorch computes it."""
    from onnx import helper
    for node in graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        attrs = {a.name: a for a in node.attribute}
        if "pads" in attrs:
            p = list(attrs["pads"].ints)
            if len(p) == 4:
                attrs["pads"].CopyFrom(helper.make_attribute("pads", [p[0], p[2], p[1], p[3]]))
        if "output_shape" in attrs:
            node.attribute.remove(attrs["output_shape"])


def _symbolic_batch(graph):
    """The traced batch size baked into the graph's shape constants made symbolic: a Reshape target's leading
    TRACE_BATCH becomes 0 (copy the input's batch), an Expand target's becomes 1 (broadcast keeps the batch).
    check_export then runs the file at other batch sizes against the network: a graph that still fixes the
    batch somewhere fails there, not at the user's."""
    from onnx import numpy_helper
    consts = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = node
    for node in graph.node:
        if node.op_type not in ("Reshape", "Expand") or len(node.input) < 2 or node.input[1] not in consts:
            continue
        holder = consts[node.input[1]]
        tensor = holder if not hasattr(holder, "attribute") else holder.attribute[0].t
        value = numpy_helper.to_array(tensor).copy()
        if value.ndim != 1 or not len(value) or value[0] != TRACE_BATCH:
            continue
        value[0] = 0 if node.op_type == "Reshape" else 1
        new = numpy_helper.from_array(value, tensor.name)
        if hasattr(holder, "attribute"):
            holder.attribute[0].t.CopyFrom(new)
        else:
            holder.CopyFrom(new)


def read_onnx_description(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    for p in m.metadata_props:
        if p.key == "facegan":
            return json.loads(p.value)
    return None


def run_exported(path, xs):
    """The exported file's output for inputs `xs` (numpy): ONNX through onnxruntime, MINDIR through
    mindspore.load + nn.GraphCell."""
    if path.endswith(".onnx"):
        import onnxruntime as ort
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})[0]
    import mindspore as ms
    from mindspore import nn
    g = nn.GraphCell(ms.load(path))
    out = g(*[ms.Tensor(x) for x in xs])
    return (out[0] if isinstance(out, (tuple, list)) else out).asnumpy()


def check_export(path, directory, net=None, batch=1, img_size=None, seed=1, instance_stats=True,
                 dynamic_batch=False):
    """max |exported - network| on random inputs (the network as load_network gives it, CPU kernels in), at
    `batch`, or with dynamic_batch at batch sizes 1 and 3."""
    import mindspore as ms
    from models import load_network
    worst, ref = 0.0, None
    for b in ((1, 3) if dynamic_batch else (batch,)):
        meta, name, model, sig, inputs = plan(directory, net, b, img_size)
        xs = example_inputs(inputs, seed)
        if ref is None:          # loaded once; each batch size only compiles its own graph
            ref = load_network(directory, name, expect_model=model)
            if model == "stargan_generator":
                from models.stargan import use_instance_stats
                use_instance_stats(ref, instance_stats)
        want = ref(*[ms.Tensor(x) for x in xs])
        want = (want if sig.output is None else want[sig.output]).asnumpy()
        try:
            got = run_exported(path, xs)
        except Exception as e:   # noqa: BLE001 (onnxruntime's and MindSpore's run errors have no common type)
            first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ExportError(f"the exported file does not run at batch {b}: {first[:300]}") from None
        if got.shape != want.shape:
            raise ExportError(f"the exported output has shape {got.shape}, the network's {want.shape}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst
