"""DataLoader worker processes for the loader: ``pool`` (the pass over them; a dead worker is
noticed by polling), ``requests`` (what runs in a worker: a group of batches a request, each read
straight into a free slot) and ``slots`` (the ring of shared-memory batch slots lent to the
consumer without a copy) and ``shm`` (whether what they hold fits /dev/shm, asked before they
start: else fewer batches there, or threads). The only place that touches torch's private
DataLoader iterator."""

__all__: list[str] = []
