"""The benchmark folder lock: keras_impl/folder_lock.py (moved there so that ``bilstm export`` shares it)."""
from keras_impl.folder_lock import LOCK_NAME, FolderLock, FolderLocked, holder

__all__ = ["LOCK_NAME", "FolderLock", "FolderLocked", "holder"]
