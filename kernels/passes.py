"""The pass that puts the CPU kernels into a built network: layer swaps and fusions, parameters untouched.

    net = models.create_model("ugatit_p2c_generator", ngf=32)   # MindSpore's own ops everywhere
    kernels.accelerate(net)                                      # on CPU: the same network on the kernels

What it does, in order (each step leaves every Parameter object, name and value as it was):
1. block fusions (not with second_order): a network block with a kernel of its own becomes one op per
   direction; today photo2cartoon's hourglass unit (models.ugatit.ConvBlock with dim_in == dim_out),
   registered in FUSIONS;
2. sequence fusions (not with second_order): in every SequentialCell, each run InstanceNorm2d (no affine)
   -> ReLU [-> ReflectionPad2d] becomes one NormReLUPad; the Cells it absorbs become Identity, so the
   Sequential indices (and the published weights' key names) stay as they were;
3. layer swaps: every layer in SWAPS whose geometry the kernels cover (asked from the C++ rules) becomes its
   native Cell. With second_order only those whose gradients differentiate again (convolutions, transposed
   convolutions, leaky ReLU, padding, pooling): a network whose input gradient is itself differentiated (a
   WGAN-GP critic) keeps MindSpore's norms, whose kernels' backward has no gradient of its own.
"""
from mindspore import nn

from models import layers
from models.surgery import replace_cells, replace_child
from . import cells as kc
from . import ops as kops


def _conv(c):
    cin, cout, k, stride, padding = c.geometry
    return kc.NativeConv2d(c) if kops.conv_supported(cin, k, stride, padding) else None


def _sn_conv(c):
    cin, cout, k, stride, padding = c.geometry
    return kc.NativeSNConv2d(c) if kops.conv_supported(cin, k, stride, padding) else None


def _conv_transpose(c):
    cin, cout, k, stride, padding, output_padding = c.geometry
    return kc.NativeConvTranspose2d(c) if kops.conv_transpose_supported(k, stride, padding, output_padding) else None


# portable layer type -> (native Cell maker returning None where the kernels do not cover it, second order)
SWAPS = {
    layers.Conv2d: (_conv, True),
    layers.SNConv2d: (_sn_conv, True),
    layers.ConvTranspose2d: (_conv_transpose, True),
    layers.LeakyReLU: (kc.NativeLeakyReLU, True),
    layers.ReflectionPad2d: (lambda c: kc.NativePadUp(c.padding, 1), True),
    layers.UpsampleNearest2x: (lambda c: kc.NativePadUp(0, 2), True),
    layers.AvgPool2x2: (kc.NativeAvgPool2x2, True),
    layers.InstanceNorm2d: (kc.NativeInstanceNorm2d, False),
    layers.TrackedInstanceNorm2d: (kc.NativeTrackedInstanceNorm2d, False),
    layers.AdaLIN: (lambda c: kc.NativeLINMix(c, adaptive=True), False),
    layers.LIN: (lambda c: kc.NativeLINMix(c, adaptive=False), False),
}


def _fuse_conv_block(block):
    """models.ugatit.ConvBlock without projection, its three units [InstanceNorm2d, ReLU, ReflectionPad2d(1),
    3x3 Conv2d without padding] on covered convolutions -> NativeConvBlock."""
    if block.project:
        return None
    units = (block.ConvBlock1, block.ConvBlock2, block.ConvBlock3)
    for u in units:
        parts = list(u.cell_list)
        if len(parts) != 4:
            return None
        norm, relu, pad, conv = parts
        if not (type(norm) is layers.InstanceNorm2d and not norm.affine and type(relu) is nn.ReLU
                and type(pad) is layers.ReflectionPad2d and pad.padding == 1 and type(conv) is layers.Conv2d):
            return None
        cin, cout, k, stride, padding = conv.geometry
        if k != 3 or stride != 1 or padding != 0 or conv.has_bias or not kops.conv_supported(cin, k, stride, padding):
            return None
    if units[0][3].geometry[0] % 4:   # the unit's width (dim_in == dim_out) must split into C/2, C/4, C/4
        return None
    return kc.NativeConvBlock(block)


def _fusions():
    from models import ugatit
    return {ugatit.ConvBlock: _fuse_conv_block}


NATIVE_TYPES = tuple(v for v in vars(kc).values() if isinstance(v, type) and issubclass(v, nn.Cell))


def _walk(cell, visit):
    """visit(child) -> a replacement or None, for every Cell below `cell`, parents first; native Cells are
    not entered."""
    replace_cells(cell, visit, NATIVE_TYPES)


def _outside_native(cell):
    """`cell` and every Cell below it, except native Cells and what they hold."""
    yield cell
    for child in cell._cells.values():
        if child is not None and not isinstance(child, NATIVE_TYPES):
            yield from _outside_native(child)


def _fuse_sequences(cell):
    for seq in list(_outside_native(cell)):
        if not isinstance(seq, nn.SequentialCell):
            continue
        keys = list(seq._cells.keys())
        i = 0
        while i + 1 < len(keys):
            a, b = seq._cells[keys[i]], seq._cells[keys[i + 1]]
            if type(a) is layers.InstanceNorm2d and not a.affine and type(b) is nn.ReLU:
                nxt = seq._cells[keys[i + 2]] if i + 2 < len(keys) else None
                pad = nxt if type(nxt) is layers.ReflectionPad2d else None
                replace_child(seq, keys[i], kc.NormReLUPad(a.eps, pad.padding if pad is not None else 0))
                replace_child(seq, keys[i + 1], nn.Identity())
                if pad is not None:
                    replace_child(seq, keys[i + 2], nn.Identity())
                i += 3 if pad is not None else 2
            else:
                i += 1


def apply(net, second_order=False):
    """Swap and fuse the layers of `net` in place (see the module docstring); returns `net`."""
    before = {id(p): p.name for p in net.get_parameters()}
    if not second_order:
        fusions = _fusions()
        _walk(net, lambda c: fusions[type(c)](c) if type(c) in fusions else None)
        _fuse_sequences(net)

    def swap(c):
        rule = SWAPS.get(type(c))
        if rule is None or (second_order and not rule[1]):
            return None
        return rule[0](c)
    _walk(net, swap)
    after = {id(p): p.name for p in net.get_parameters()}
    if after != before:   # a swap must never lose, add or rename a parameter
        raise AssertionError(f"kernels.accelerate changed the parameters of {type(net).__name__}")
    return net
