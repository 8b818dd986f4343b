"""Write a directory all at once: into a temp dir beside it, renamed into place only when complete."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import HyperLoRAError


@contextmanager
def atomic_dir(out_dir, force: bool = False):
    """Yield a temp directory to fill; on success it replaces ``out_dir``, on error it is deleted.

    An existing ``out_dir`` is refused (and left untouched) unless ``force``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise HyperLoRAError(f"{out_dir} already exists (use --force to replace it)")
    if out_dir.exists() and not out_dir.is_dir():
        raise HyperLoRAError(f"{out_dir} exists and is not a directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should look like any other dir
    try:
        yield tmp
        if out_dir.exists():
            # Move the old one aside first so that no moment leaves out_dir missing or half-written.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / "d")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
