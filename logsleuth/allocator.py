"""How the command-line process allocates Arrow memory: freed buffers go back to the system.

A parse builds and drops Arrow tables chunk after chunk. Arrow's default pool (mimalloc)
keeps what it freed for reuse, so a diagnosis held its high-water mark of tables in
flight: 30-40 MB of tree PSS on a 100 MB PyTorch or Keras log (``bench/README.md``,
"Memory"). :func:`return_freed_memory` has Arrow allocate through the system allocator,
which returns freed memory, at a cost within the noise of the throughput benchmark.
The command line calls it at start (unless ``ARROW_DEFAULT_MEMORY_POOL`` chooses a pool);
the library leaves the process's allocator alone.

Tried and left out: fixing glibc's mmap threshold at 256 KiB-1 MiB (``mallopt``) took
another 40-70 MB off a diagnosis but made the Caffe parse 20-25% slower (every buffer
of a chunk mapped afresh); ``malloc_trim`` after each chunk changed nothing (the peak is
the chunks in flight, not what accumulates).
"""

from __future__ import annotations

import os
import sys


def return_freed_memory() -> None:
    """Have Arrow allocate through the system allocator, unless the user chose a pool."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    if "pyarrow" in sys.modules:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    else:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # read when pyarrow first allocates
