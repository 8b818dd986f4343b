"""Ray Data executor: the same steps as the local executor, as ``map_batches`` over a Ray dataset.

Each Ray worker builds its own copy of the steps (the encoder loads once per worker, on its first batch); batches
travel as Arrow tables with the schema of ``records.arrow_schema``. Ray is optional (``pip install
'hyperlora[ray]'``); it is imported only here. On a cluster, call ``ray.init(address=...)`` first; otherwise a
local Ray starts with the machine's cores.
"""

from .records import to_table
from .steps import run_steps


class _StepsWorker:
    """Holds one copy of the steps per Ray worker process."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, table):
        return to_table(run_steps(self.steps, table.to_pylist()))


def run_ray(records: list[dict], steps, batch_size: int = 64, workers: int = 1) -> list[dict]:
    """Run ``steps`` over ``records`` on Ray; returns the finished records (with embeddings), in input order.

    Args:
        records: the input records.
        steps: the steps (pickled to each worker).
        batch_size: records per batch.
        workers: Ray workers running the steps (each holds an encoder).
    """
    try:
        import ray
    except ImportError as e:
        from hyperlora.errors import HyperLoRAError

        raise HyperLoRAError("the Ray executor needs Ray: pip install 'hyperlora[ray]'") from e
    if not ray.is_initialized():
        ray.init(log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_arrow(to_table(records))
    ds = ds.map_batches(_StepsWorker, fn_constructor_args=(steps,), batch_size=batch_size,
                        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=workers))
    out = [row for ref in ds.to_arrow_refs() for row in ray.get(ref).to_pylist()]
    return sorted(out, key=lambda r: r["n"])
