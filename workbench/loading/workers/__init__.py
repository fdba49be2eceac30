"""DataLoader worker processes for the loader: ``processes`` (the pass over them, each batch's
stages timed in its worker), ``pool`` (the DataLoader that starts them, the workers kept between
passes; a dead worker is noticed by polling), ``requests`` (what runs in a worker: a group of
batches a request, each read straight into a free slot), ``slots`` (the ring of shared-memory
batch slots lent to the consumer without a copy) and ``shm`` (whether what they hold fits
/dev/shm, asked before they start: else fewer batches there, or threads), and ``ranges`` (the
stages as torch profiler and NVTX ranges). The only place that touches torch's private DataLoader
iterator and profiler flag."""

__all__: list[str] = []
