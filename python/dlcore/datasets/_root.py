"""Where the dataset loaders look when no root is given: ``$DLCORE_DATA``, else ~/.dlcore/data."""
import os


def data_root(root=None):
    """``root`` (user-expanded) if given, else ``$DLCORE_DATA``, else ``~/.dlcore/data``."""
    if root is not None:
        return os.path.expanduser(os.fspath(root))
    return os.environ.get("DLCORE_DATA") or os.path.join(os.path.expanduser("~"), ".dlcore", "data")
