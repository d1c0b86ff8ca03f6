"""Replacing Cells inside a built network in place, parameters untouched (the CPU kernels' pass and the
export pass use it)."""


def replace_child(parent, key, new):
    """Put `new` in place of `parent`'s child `key` (not setattr, which would prefix parameter names again)."""
    parent._cells[key] = new
    if hasattr(parent, "cell_list"):
        parent.cell_list = list(parent._cells.values())


def replace_cells(cell, visit, skip=()):
    """visit(child) -> a replacement or None, for every Cell below `cell`, parents first; a replaced Cell and
    Cells of the `skip` types are not entered."""
    for key, child in list(cell._cells.items()):
        if child is None or isinstance(child, skip):
            continue
        new = visit(child)
        if new is not None:
            replace_child(cell, key, new)
        else:
            replace_cells(child, visit, skip)
