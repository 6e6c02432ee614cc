"""A software-prefetch hint for numba kernels (LLVM's ``llvm.prefetch``).

The round kernel draws the participants of an auction a few auctions ahead and
prefetches their state rows, so the random gathers of many auctions overlap instead of
waiting on memory one by one (measured here: ~45 -> ~100 million bids/s at 1e6 agents).
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch_row(typingctx, table, row):
    """Hint that ``table[row, 0]`` will be read soon (a no-op for correctness)."""
    if not (isinstance(table, types.Array) and table.ndim == 2 and isinstance(row, types.Integer)):
        return None
    return types.void(table, row), _prefetch_codegen


@intrinsic
def prefetch_item(typingctx, table, row, column):
    """Hint that ``table[row, column]`` will be read soon (for rows longer than a cache line)."""
    if not (isinstance(table, types.Array) and table.ndim == 2 and isinstance(row, types.Integer)
            and isinstance(column, types.Integer)):
        return None
    return types.void(table, row, column), _prefetch_codegen


def _prefetch_codegen(context, builder, signature, args):
    array_type = signature.args[0]
    array = context.make_array(array_type)(context, builder, args[0])
    row_index = context.cast(builder, args[1], signature.args[1], types.intp)
    if len(args) > 2:
        column_index = context.cast(builder, args[2], signature.args[2], types.intp)
    else:
        column_index = context.get_constant(types.intp, 0)
    pointer = cgutils.get_item_pointer(context, builder, array_type, array, [row_index, column_index],
                                       wraparound=False)
    byte_pointer = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    function = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
        "llvm.prefetch.p0",
    )
    # read (0), high temporal locality (3), data cache (1)
    builder.call(function, [builder.bitcast(pointer, byte_pointer),
                            ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()
